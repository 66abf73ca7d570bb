/**
 * The MQTT will as a failover hint with lease reads on (fencing configured): followers
 * forget a leader whose will arrives and elect another at once, and the leader keeps
 * its read lease safe by counting no heartbeat round sent before its own broker
 * session ended (RaftNode.dropLease; docs/mqtt.md has the argument).
 *   - the leader's connection is dropped again and again (the client side closes it;
 *     the broker publishes the will one latency later): no violation, and failover is
 *     fast — the will, not the election timeout;
 *   - the same with the leader blind to its own session loss (it keeps its lease):
 *     the linearizability check finds its stale lease reads.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed, type EngineSimCluster } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { sessionBlindLink } from './helpers.ts';

/**
 * Drops the current leader's broker session every `everyMs` from 5 s on, and records
 * how long each time until another node leads (virtual ms).
 */
function dropLeaderEvery(everyMs: number) {
  const gaps: number[] = [];
  const setup = (c: EngineSimCluster) => {
    const drop = () => {
      // The newest leader (an older one cut off a moment ago may still believe it leads).
      const l = c.live().filter((r) => r.isLeader).sort((a, b) => b.engine!.status().term - a.engine!.status().term)[0];
      if (l) {
        c.world.broker.client(l.id)?.dropSession();
        const t0 = c.world.nowMs;
        const watch = () => {
          if (c.live().some((r) => r.isLeader && r.engine!.status().term > l.engine!.status().term)) gaps.push(c.world.nowMs - t0);
          else if (c.world.nowMs - t0 < everyMs) c.world.sched.after(1000, watch);
        };
        watch();
      }
      c.world.sched.after(everyMs * 1000, drop);
    };
    c.world.sched.at(5_000_000, drop);
  };
  return { setup, gaps };
}

describe('will hint with lease reads (fencing on)', () => {
  const cfg = parseSimOptions({ seeds: '1..6', nodes: 3, time: '20s', faults: '' });

  it('the leader drops its lease when its session ends: no violation, and the will elects the next leader well within an election timeout', () => {
    const gaps: number[] = [];
    for (const seed of cfg.seeds) {
      const d = dropLeaderEvery(1000);
      const r = runEngineSeed(cfg, seed, { setup: d.setup, workload: { clients: 16 } });
      expect(r.violation, `seed ${seed}: ${r.violation?.invariant} ${r.violation?.detail}`).toBeUndefined();
      expect(r.lin).toBe('ok');
      expect(r.leaders).toBeGreaterThan(8);
      gaps.push(...d.gaps);
    }
    gaps.sort((a, b) => a - b);
    // (Fewer than one per drop: a dropped leader is also fenced by its successor — its
    // relay switched off — and stays off for a while; drops then find no leader to hit.)
    expect(gaps.length).toBeGreaterThan(20);
    // The election timeout is 150–300 ms: a median far below it is the will at work,
    // and most failovers come before the shortest timeout could have run out. (The
    // median moves with any change to the runs' timing: 56 ms on these seeds and 66 ms
    // on seeds 7..30 before followers failed their forwarded reads at a leader change,
    // 62 and 71 after; the bound is half the shortest timeout.)
    expect(gaps[Math.floor(gaps.length / 2)]).toBeLessThan(75);
    expect(gaps[Math.floor((gaps.length * 3) / 4)]).toBeLessThan(150);
  }, 300_000);

  it('planted: a leader blind to its own session loss keeps serving lease reads: the linearizability check fails', () => {
    // Seeds in order until two are caught: proving a history not linearizable (and
    // minimizing the explanation) costs the checker seconds a seed — 17 s of CPU for
    // seed 1 — and all six took 467 s on a machine at load 18, past the timeout.
    const caught: Array<string | undefined> = [];
    for (const seed of cfg.seeds) {
      if (caught.filter((v) => v === 'linearizability').length >= 2) break;
      caught.push(runEngineSeed(cfg, seed, { setup: dropLeaderEvery(1000).setup, workload: { clients: 16 }, wrapLink: sessionBlindLink }).violation?.invariant);
    }
    expect(caught.filter((v) => v === 'linearizability').length).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
