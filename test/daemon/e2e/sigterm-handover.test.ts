/**
 * A planned stop of the leader (SIGTERM: `systemctl restart quorumd`, an upgrade): it
 * hands leadership over, and the next leader must be able to act at once — the old one
 * answered it in the new term (docs/fencing.md, "acknowledged"). It exited at the first
 * sign of the new leader, before its answer (sent only once its write was durable) left,
 * and the next leader waited out the lease and watchdog bound (with relays, `quorumd dev`,
 * it fenced the board that was stopping cleanly). Real processes, a real broker; leases
 * only (no relays), watchdog bound 3 s.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { call } from '../../../daemon/client/http.ts';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

interface Status { role: string; active: boolean; clearedBy?: Record<string, string> }

describe('SIGTERM to the leader', () => {
  it('the next leader is cleared by the old one\'s answer, not by its lease running out', async () => {
    cluster = await ProcCluster.start(3, 'fencing:\n  watchdogTimeoutMs: 3000\n');
    const old = await cluster.waitLeader(60_000);
    const oldId = old.name.slice(1);
    await cluster.waitFor(async () => {
      try {
        return (JSON.parse((await call(old.url, 'GET', '/v1/status', { timeoutMs: 2000 })).body.toString()) as Status).active;
      } catch {
        return false;
      }
    }, 60_000, `${old.name} active`);
    const exited = new Promise<number | null>((r) => old.child!.once('exit', (code) => r(code)));
    cluster.kill(old, 'SIGTERM');
    expect(await exited).toBe(0);
    let st: Status | undefined;
    await cluster.waitFor(
      async () => {
        for (const n of cluster!.nodes.filter((x) => x !== old)) {
          try {
            const s = JSON.parse((await call(n.url, 'GET', '/v1/status', { timeoutMs: 2000 })).body.toString()) as Status;
            if (s.role === 'leader' && s.active) st = s;
          } catch {
            /* not answering yet */
          }
        }
        return st !== undefined;
      },
      60_000,
      'an active leader among the other two',
    );
    expect(st!.clearedBy?.[oldId]).toBe('acknowledged');
  }, 180_000);
});
