/**
 * Link events in the node's log: one line when a link goes down and one when it is back,
 * with the outage's length, attempts and last error (a broker that stays away must not
 * fill the log with a line per reconnect attempt).
 */
import { describe, expect, it } from 'vitest';
import { WireEndpoint } from '../../../daemon/runtime/wire-endpoint.ts';
import type { Link } from '../../../hal/interfaces.ts';

const link = { name: 'mqtt' } as Link;

describe('link events in the log', () => {
  it("'down' carries its reason; 'up' after an outage carries the summary, a first 'up' none", () => {
    const lines: Array<{ msg: string; f: Record<string, unknown> | undefined }> = [];
    const log = (_l: string, msg: string, f?: Record<string, unknown>) => void lines.push({ msg, f });
    WireEndpoint.logLinkEvent(log, 3, link, { kind: 'up' });
    WireEndpoint.logLinkEvent(log, 3, link, { kind: 'down', reason: 'mqtt://127.0.0.1:1883: connection closed' });
    WireEndpoint.logLinkEvent(log, 3, link, { kind: 'up', outageMs: 2412.7, attempts: 6, lastError: 'connect ECONNREFUSED 127.0.0.1:1883' });
    expect(lines).toEqual([
      { msg: 'link up', f: { node: 3, link: 'mqtt' } },
      { msg: 'link down', f: { node: 3, link: 'mqtt', reason: 'mqtt://127.0.0.1:1883: connection closed' } },
      { msg: 'link up', f: { node: 3, link: 'mqtt', outageMs: 2413, attempts: 6, lastError: 'connect ECONNREFUSED 127.0.0.1:1883' } },
    ]);
  });
});
