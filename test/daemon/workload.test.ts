/**
 * The Jepsen-style workload's mapping of failures (daemon/client/workload.ts): a request
 * refused at connect was never sent, so it is left out of the history (it did not
 * happen); one that may have reached the node — here, a node that accepts and never
 * answers — is an op of unknown outcome (`ret: null`). Keeping refusals out matters:
 * every unknown write multiplies the linearizability checker's search, and a node that
 * is down refuses thousands of them.
 */
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../../daemon/client/workload.ts';
import { Rng } from '../../src/rng.ts';
import { freePort } from '../helpers/ports.ts';

describe('runWorkload: what a failed request means for the history', () => {
  it('a refused connection is no op; a request that got no answer is an op of unknown outcome', async () => {
    const closed = await freePort();
    const rng = new Rng(7);
    const refused = await runWorkload({ nodes: [`http://127.0.0.1:${closed}`], keys: ['a'], clients: 2, until: performance.now() + 60_000, timeoutMs: 5000, random: () => rng.float(), maxOpsPerClient: 40 });
    expect(refused.history).toEqual([]);
    expect((refused.counts['put-refused'] ?? 0) + (refused.counts['get-refused'] ?? 0)).toBe(80);
    expect(refused.counts['put-refused'] ?? 0).toBeGreaterThan(0);

    // A node that takes the connection and says nothing: the request may have been applied.
    const held: Socket[] = [];
    const silent = createServer((s) => void held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as { port: number }).port;
      const mute = await runWorkload({ nodes: [`http://127.0.0.1:${port}`], keys: ['a'], clients: 1, until: performance.now() + 60_000, timeoutMs: 100, random: () => rng.float(), maxOpsPerClient: 12 });
      const puts = mute.counts['put-timeout'] ?? 0;
      expect(puts).toBeGreaterThan(0);
      expect(mute.history.filter((o) => o.op === 'put' && o.ret === null)).toHaveLength(puts);
      expect(mute.counts['put-refused']).toBeUndefined();
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 60_000);
});
