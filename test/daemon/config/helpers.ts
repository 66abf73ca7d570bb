/** Shared by the config tests: a minimal valid file and the problems of a rejected one. */
import { join } from 'node:path';
import { expect } from 'vitest';
import { ConfigError, parseConfigText } from '../../../daemon/config/load.ts';

export const root = join(import.meta.dirname, '..', '..', '..');
export const KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
/** A minimal valid config of node a in a three-member cluster (13 lines). */
export const good = `cluster:
  name: home
  key: ${KEY}
members:
  - { id: 1, name: a }
  - { id: 2, name: b }
  - { id: 3, name: c }
node:
  name: a
  dataDir: /tmp/quorumd-a
mqtt:
  brokers: [mqtt://127.0.0.1:1883]
`;

/** The problems of a config that must be rejected (fails the test if it is accepted). */
export function problems(text: string): Array<{ key: string; line: number; message: string }> {
  try {
    parseConfigText(text, 'x.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}
