/**
 * The runtime's Logger over pino (daemon/log.ts): one JSON object per line, the node's
 * name under `node` exactly once.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { runtimeLogger } from '../../daemon/log.ts';

function capture() {
  const lines: string[] = [];
  const p = pino({ level: 'debug', base: { node: 'n2', cluster: 'dev' } }, { write: (s: string) => void lines.push(s) });
  return { lines, log: runtimeLogger(p) };
}

describe('runtimeLogger', () => {
  it("drops the runtime's numeric own-node field: the line keeps the node's name, once", () => {
    const { lines, log } = capture();
    log('error', 'fatal: node stops', { node: 2, error: 'storage I/O failed', kind: 'StorageIoError' });
    expect(lines).toHaveLength(1);
    // Count the keys in the text: JSON.parse would hide a duplicate by keeping the last.
    expect(lines[0]!.match(/"node":/g)).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ node: 'n2', cluster: 'dev', msg: 'fatal: node stops', error: 'storage I/O failed', kind: 'StorageIoError', level: 50 });
  });

  it('passes other fields, and lines without fields, through unchanged', () => {
    const { lines, log } = capture();
    log('info', 'peer gone', { peer: 3, link: 'mqtt' });
    log('warn', 'plain');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ node: 'n2', msg: 'peer gone', peer: 3, link: 'mqtt', level: 30 }),
      expect.objectContaining({ node: 'n2', msg: 'plain', level: 40 }),
    ]);
  });
});
