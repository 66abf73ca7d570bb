/**
 * ZAB at the engine level, in the link model of test/src/bully/compare.test.ts (the
 * Raft and bully rows of docs/engines.md): 5 boards, reliable links with a one-tick
 * delay, 10 ms ticks, default options, the leader crashed at every phase of the
 * heartbeat period over 40 seeds. Measures ticks until every live board follows the
 * new established leader in broadcast, and the messages and wire bytes (codec frames
 * with the tag, worst-case envelope) sent meanwhile; also with the link's report of
 * the dead leader (leaderGone, an MQTT Last Will one tick after the crash), and the
 * idle cost. Prints the numbers; asserts only the structure: ZAB's failover is
 * detection (syncLimit) plus a fixed number of round trips, with no split vote.
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

const IDS = [1, 2, 3, 4, 5];
const SEEDS = 40;
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

function failover(seed: number, lastWill: boolean) {
  const c = new Cluster({ seed, voters: IDS, net: { drop: 0, dup: 0, minDelay: 1, maxDelay: 1 }, check: seed <= 5 });
  c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
  c.run(seed % 5); // every phase of the 50 ms heartbeat period
  const leader = c.agreed()!;
  c.countBytes = true;
  c.sentMessages = 0;
  c.sentBytes = 0;
  c.crash(leader);
  if (lastWill) {
    c.tick(); // the broker notices and publishes the will: one link latency
    for (const n of c.up()) {
      n.z.leaderGone(leader);
      c.process(n);
    }
  }
  const t = c.runUntil(() => c.agreed() !== undefined, 400, 'new leader') + (lastWill ? 1 : 0);
  return { t, m: c.sentMessages, b: c.sentBytes };
}

describe('zab, engine level, the link model of the Raft/bully comparison', () => {
  it('failover time, messages and bytes per failover; idle cost', () => {
    const cut = { t: [] as number[], m: [] as number[], b: [] as number[] };
    const will = { t: [] as number[], m: [] as number[], b: [] as number[] };
    for (let seed = 1; seed <= SEEDS; seed++) {
      for (const [acc, lw] of [[cut, false], [will, true]] as const) {
        const r = failover(seed, lw);
        acc.t.push(r.t);
        acc.m.push(r.m);
        acc.b.push(r.b);
      }
    }
    const c = new Cluster({ seed: 99, voters: IDS, net: { drop: 0, dup: 0, minDelay: 1, maxDelay: 1 } });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    c.run(20);
    c.countBytes = true;
    c.sentMessages = 0;
    c.sentBytes = 0;
    c.run(500); // 5 s idle
    const line = (name: string, x: typeof cut) =>
      `${name}: failover ticks p50=${q(x.t, 0.5)} p99=${q(x.t, 0.99)} max=${Math.max(...x.t)}; messages/failover p50=${q(x.m, 0.5)} max=${Math.max(...x.m)}; bytes/failover p50=${q(x.b, 0.5)} max=${Math.max(...x.b)}`;
    console.log(line('zab, power cut (syncLimit)', cut));
    console.log(line('zab, crash + Last Will   ', will));
    console.log(`zab idle per 5 s: ${c.sentMessages} msgs ${c.sentBytes} B`);
    // Detection (15 ticks) + election, discovery and synchronization: a fixed number of
    // round trips, no randomized timeout to repeat.
    expect(Math.max(...cut.t)).toBeLessThan(60);
    expect(Math.max(...will.t)).toBeLessThan(Math.max(...cut.t));
    // Idle: one PING and one PONG per follower per heartbeat (50 ms): 4 × 2 × 100 = 800.
    expect(c.sentMessages).toBe(800);
  });
});
