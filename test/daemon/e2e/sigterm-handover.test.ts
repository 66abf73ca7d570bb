/**
 * A planned stop of the leader (SIGTERM: `systemctl restart quorumd`, an upgrade): it
 * hands leadership over, and the next leader must be able to act at once — the old one
 * answered it in the new term (docs/fencing.md, "acknowledged"). It exited at the first
 * sign of the new leader, before its answer (sent only once its write was durable) left,
 * and the next leader waited out the lease and watchdog bound (with relays, `quorumd dev`,
 * it fenced the board that was stopping cleanly). A Multi-Paxos or ZAB leader did not hand
 * over at all: on `quorumd dev --engine paxos|zab` its board's relay was cut 2.7–3.2 s
 * after the SIGTERM. Real processes, a real broker; leases only (no relays), watchdog
 * bound 3 s, so anything but the acknowledgement takes over 3 s.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { call } from '../../../daemon/client/http.ts';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

interface Status { role: string; active: boolean; clearedBy?: Record<string, string> }

describe('SIGTERM to the leader', () => {
  for (const engine of ['raft', 'paxos', 'zab'] as const) {
    it(`${engine}: the next leader is cleared by the old one's answer, not by its lease running out`, async () => {
      cluster = await ProcCluster.start(3, `${engine === 'raft' ? '' : `engine: ${engine}\n`}fencing:\n  watchdogTimeoutMs: 3000\n`);
      const c = cluster;
      const old = await c.waitLeader(60_000);
      const oldId = old.name.slice(1);
      await c.waitFor(async () => {
        try {
          return (JSON.parse((await call(old.url, 'GET', '/v1/status', { timeoutMs: 2000 })).body.toString()) as Status).active;
        } catch {
          return false;
        }
      }, 60_000, `${old.name} active`);
      const exited = new Promise<number | null>((r) => old.child!.once('exit', (code) => r(code)));
      const t0 = performance.now();
      c.kill(old, 'SIGTERM');
      expect(await exited).toBe(0);
      let st: Status | undefined;
      await c.waitFor(
        async () => {
          for (const n of c.nodes.filter((x) => x !== old)) {
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
      expect(st!.clearedBy?.[oldId], `cleared ${(performance.now() - t0).toFixed(0)} ms after the SIGTERM`).toBe('acknowledged');
    }, 180_000);
  }
});
