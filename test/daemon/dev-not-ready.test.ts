/**
 * `quorumd dev` edge cases of its start: a cluster that never becomes ready keeps its
 * logs (the error points at them), and with a lying node (engine pbft, testing only) the
 * cluster is ready when the honest nodes agree; KV through an honest node works.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';

const dirs: string[] = [];
let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('quorumd dev start', () => {
  it('a cluster that is not ready in time keeps its logs where the error says', async () => {
    const base = await freeBasePort(3);
    let err: Error | undefined;
    try {
      // 1 ms: the wait ends before any node could answer.
      await startDev({ nodes: 3, engine: 'raft', relays: false, jobs: [], basePort: base, handleSignals: false, out: () => {}, progress: () => {}, readyTimeoutMs: 1 });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/did not elect a stable leader within 1 ms; see the node logs in (\S+) \(kept; remove it when done\)/);
    const dir = /see the node logs in (\S+) /.exec(err!.message)![1]!;
    dirs.push(dir);
    expect(existsSync(`${dir}/n1.log`)).toBe(true);
  }, 60_000);

  // It failed in about 1 of 10 tries on a loaded machine: one honest node's view-change
  // timer expired at start-up and, under the paper's rule, it went alone to view 1 and
  // never came back. Fixed by complaints before a view change (src/pbft/pbft.ts
  // "Suspicion") and the 4000 ms board timeout; 15 of 15 passed at load 16–40.
  it('engine pbft with a lying node: ready when the honest nodes agree; KV through an honest node', async () => {
    const base = await freeBasePort(4);
    let printed = '';
    dev = await startDev({ nodes: 4, engine: 'pbft', byzantineNode: 4, byzantineMode: 'wrong-reply', basePort: base, handleSignals: false, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 60_000 });
    expect(printed).toMatch(/LIAR\s+n4 runs as a BYZANTINE replica \(wrong-reply/);
    // The guide prints what works on pbft: locks through the f + 1 client, not one node's curl.
    expect(printed).not.toContain('/v1/locks/');
    expect(printed).not.toContain(' lock list ');
    expect(printed).toMatch(/lock acquire backup --ttl 15s --pbft \S+n1\.yaml --node /);
    const token = readFileSync(dev.tokenFile, 'utf8').trim();
    const w = await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/k', { body: 'v', token, timeoutMs: 15_000 });
    expect(w.status, w.body.toString()).toBe(200);
    const r = await call(dev.nodes[1]!.url, 'GET', '/v1/kv/k', { token, timeoutMs: 15_000 });
    expect(r.body.toString()).toBe('v');
    expect(readFileSync(dev.nodes[3]!.logFile, 'utf8')).toMatch(/"level":50/); // the liar says so at error level
    await dev.stop();
    dev = undefined;
  }, 120_000);
});
