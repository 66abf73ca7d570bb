/**
 * Integer fields (daemon/config/zod.ts `int`): whatever is wrong with the value — not a
 * number, not an integer, below or above the range, infinite — the message is the same
 * one, naming the key and the range; both ends of the range are accepted.
 */
import { describe, expect, it } from 'vitest';
import { good } from './helpers.ts';
import { parseConfigText } from '../../../daemon/config/load.ts';

const MSG = /raft\.heartbeatMs: expected milliseconds: an integer 1\.\.30000/;
const withHeartbeat = (v: string) => `${good}raft: { heartbeatMs: ${v}, electionTimeoutMinMs: 60000, electionTimeoutMaxMs: 120000 }\n`;

describe('config integer fields', () => {
  for (const [what, v] of [['a string', '"100"'], ['a fraction', '1.5'], ['below the range', '0'], ['above the range', '30001'], ['infinite', '.inf'], ['negative', '-5'], ['not a number (NaN)', '.nan'], ['null', 'null']] as const) {
    it(`${what} (${v}): one message with the key and the range`, () => {
      expect(() => parseConfigText(withHeartbeat(v), 'x.yaml')).toThrow(MSG);
    });
  }

  it('both ends of the range are accepted', () => {
    expect(parseConfigText(withHeartbeat('1'), 'x.yaml').raft.heartbeatMs).toBe(1);
    expect(parseConfigText(withHeartbeat('30000'), 'x.yaml').raft.heartbeatMs).toBe(30000);
  });

  it('an absent field takes its default', () => {
    expect(parseConfigText(good, 'x.yaml').raft.heartbeatMs).toBe(100);
  });
});
