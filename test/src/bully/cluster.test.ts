/**
 * Whole clusters of bully engines in the in-memory harness (virtual time, 1 tick =
 * 10 ms with the default options): elections, failover, preemption, restarts, loss,
 * partitions. The harness itself checks persist-before-send, growing epochs and unique
 * fencing tokens on every Ready.
 */
import { describe, expect, it } from 'vitest';
import { Cluster, RELIABLE } from './harness.ts';
import { DEFAULT_BULLY_OPTIONS, fencingToken } from '../../../src/bully/index.ts';

const T = DEFAULT_BULLY_OPTIONS.tickMs;
const FAIL_MAX = DEFAULT_BULLY_OPTIONS.failureTimeoutMaxMs / T;
const ANSWER = DEFAULT_BULLY_OPTIONS.answerTimeoutMs / T;
const HEARTBEAT = DEFAULT_BULLY_OPTIONS.heartbeatMs / T;
/**
 * Failover bound on a reliable 1-tick network: the followers' failure timeout runs out
 * at most FAIL_MAX ticks after the crash (they heard the last announcement no later
 * than the crash), then one answer timeout, then one tick to deliver the announcement,
 * plus a tick of rounding on either side.
 */
const FAILOVER_BOUND = FAIL_MAX + ANSWER + 3;

function epochOf(c: Cluster, id: number): number {
  return c.node(id).status().epoch;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

describe('bully cluster', () => {
  it('initial election: the highest-priority live board wins, everyone follows it', () => {
    const c = new Cluster({ seed: 1, members: [1, 2, 3, 4, 5] });
    const t = c.settle(FAIL_MAX + 5);
    expect(c.coordinators()).toEqual([5]);
    expect(c.coordinatorships).toEqual([{ tick: expect.any(Number), id: 5, epoch: 1 }]);
    expect(t).toBeLessThanOrEqual(FAIL_MAX + 2);
    // with node 5 down from the start, 4 wins
    const d = new Cluster({ seed: 2, members: [1, 2, 3, 4, 5] });
    d.crash(5);
    d.settle(FAIL_MAX + ANSWER + 5);
    expect(d.coordinators()).toEqual([4]);
  });

  it('explicit priorities decide, not ids or list order; priority 0 never coordinates', () => {
    const members = [{ id: 1, priority: 50 }, { id: 2, priority: 0 }, { id: 3, priority: 10 }, { id: 4, priority: 30 }];
    const c = new Cluster({ seed: 3, members });
    c.settle(60);
    expect(c.coordinators()).toEqual([1]);
    c.crash(1);
    c.settle(60);
    expect(c.coordinators()).toEqual([4]);
    c.crash(4);
    c.crash(3);
    // only the priority-0 board is left: it follows no one and never takes the role
    c.run(200);
    expect(c.coordinators()).toEqual([]);
    expect(c.settledProblem()).toBeUndefined();
  });

  it('coordinator crash: the next highest takes over within the bound, over many crash phases; failover cost measured', () => {
    const times: number[] = [];
    const msgs: number[] = [];
    const bytes: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const c = new Cluster({ seed, members: [1, 2, 3, 4, 5] });
      c.settle(40);
      c.run(seed % HEARTBEAT); // crash at every phase of the announcement period
      c.resetStats();
      const before = epochOf(c, 5);
      c.crash(5);
      const t = c.settle(FAILOVER_BOUND + 10);
      expect(c.coordinators()).toEqual([4]);
      expect(epochOf(c, 4)).toBe(before + 1);
      times.push(t);
      msgs.push(c.sent.messages);
      bytes.push(c.sent.bytes);
    }
    expect(Math.max(...times)).toBeLessThanOrEqual(FAILOVER_BOUND);
    // Messages: Elections upwards from 4 followers, Answers, the announcement to 4
    // boards, and re-announcements until the last follower switched.
    expect(Math.max(...msgs)).toBeLessThan(40);
    console.log(`bully failover (5 nodes, reliable 1-tick links, ${T} ms ticks): ticks p50=${quantile(times, 0.5)} p99=${quantile(times, 0.99)} max=${Math.max(...times)}; ` +
      `messages p50=${quantile(msgs, 0.5)} max=${Math.max(...msgs)}; bytes p50=${quantile(bytes, 0.5)} max=${Math.max(...bytes)}`);
  });

  it('idle cost: one announcement per follower per heartbeat, nothing else', () => {
    const c = new Cluster({ seed: 4, members: [1, 2, 3, 4, 5] });
    c.settle(40);
    c.run(10);
    c.resetStats();
    c.run(100 * HEARTBEAT);
    expect(c.sent.messages).toBe(100 * 4);
    expect(c.sent.byType.coordinator).toBe(400);
    const perMsg = c.sent.bytes / c.sent.messages;
    expect(perMsg).toBeLessThanOrEqual(32 + 4); // epoch 1: same size class as Raft's idle heartbeat
    console.log(`bully idle: ${c.sent.messages / 100} messages and ${c.sent.bytes / 100} bytes per ${DEFAULT_BULLY_OPTIONS.heartbeatMs} ms (5 nodes)`);
  });

  it('a higher board that returns takes over with preempt, and not with nopreempt (until the coordinator fails)', () => {
    const p = new Cluster({ seed: 5, members: [1, 2, 3, 4, 5] });
    p.settle(40);
    p.crash(5);
    p.settle(40);
    expect(p.coordinators()).toEqual([4]);
    const e4 = epochOf(p, 4);
    p.restart(5);
    const t = p.settle(HEARTBEAT + ANSWER + 3);
    expect(p.coordinators()).toEqual([5]);
    expect(epochOf(p, 5)).toBe(e4 + 1);
    expect(t).toBeLessThanOrEqual(HEARTBEAT + 2);

    const np = new Cluster({ seed: 5, members: [1, 2, 3, 4, 5], options: { preempt: false } });
    np.settle(40);
    np.crash(5);
    np.settle(40, false);
    expect(np.coordinators()).toEqual([4]);
    np.restart(5);
    np.run(500);
    expect(np.coordinators()).toEqual([4]);
    expect(np.settledProblem(false)).toBeUndefined();
    expect(np.node(5).status()).toMatchObject({ role: 'follower', leader: 4 });
    np.crash(4);
    np.settle(FAILOVER_BOUND + 5, false);
    expect(np.coordinators()).toEqual([5]);
  });

  it('epochs only grow across restarts: every board rebuilt from its persisted epoch alone', () => {
    const c = new Cluster({ seed: 6, members: [1, 2, 3] });
    let last = 0;
    for (let round = 0; round < 6; round++) {
      c.settle(60);
      const [k] = c.coordinators();
      const e = epochOf(c, k!);
      expect(e).toBeGreaterThan(last);
      last = e;
      for (const id of c.ids) expect(c.disk(id).epoch).toBe(e);
      // power cut of the whole cluster, then each board boots from its disk
      for (const id of c.ids) c.crash(id);
      c.run(3);
      for (const id of c.ids) c.restart(id);
      for (const id of c.ids) expect(epochOf(c, id)).toBe(e);
    }
    expect(c.coordinatorships.map((x) => x.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a lossy, reordering network with crashes converges once the faults stop', () => {
    const c = new Cluster({ seed: 7, members: [1, 2, 3, 4, 5], net: { drop: 0.3, minDelay: 1, maxDelay: 4 } });
    for (let k = 0; k < 30; k++) {
      c.run(37);
      const id = c.ids[k % 5]!;
      if (c.isUp(id)) c.crash(id);
      else c.restart(id);
    }
    for (const id of c.ids) if (!c.isUp(id)) c.restart(id);
    c.net = RELIABLE;
    c.settle(80);
    expect(c.coordinators()).toEqual([5]);
    expect(c.coordinatorships.length).toBeGreaterThan(3);
    c.run(300);
    expect(c.settledProblem()).toBeUndefined();
  });

  it('a partition yields one coordinator per component (its highest), healing yields one (the global highest) with a larger epoch', () => {
    const c = new Cluster({ seed: 8, members: [1, 2, 3, 4, 5] });
    c.settle(40);
    c.partition([1, 2, 3], [4, 5]);
    c.settle(FAILOVER_BOUND + 5);
    expect(c.coordinators().sort()).toEqual([3, 5]);
    const e3 = epochOf(c, 3);
    const e5 = epochOf(c, 5);
    expect(e3).toBe(2); // a fresh epoch on the minority side: bully has no quorum
    expect(fencingToken(e3, 3)).toBeGreaterThan(fencingToken(1, 5));
    c.heal();
    c.settle(HEARTBEAT + ANSWER + 5);
    expect(c.coordinators()).toEqual([5]);
    expect(epochOf(c, 5)).toBeGreaterThan(Math.max(e3, e5));
  });

  it('nopreempt: after healing, the coordinator with the newer epoch stays', () => {
    const c = new Cluster({ seed: 9, members: [1, 2, 3, 4, 5], options: { preempt: false } });
    c.settle(40);
    c.partition([1, 2, 3], [4, 5]);
    c.settle(FAILOVER_BOUND + 5, false);
    expect(c.coordinators().sort()).toEqual([3, 5]);
    // make the minority side's epoch the newer one: its coordinator fails over once more
    c.crash(3);
    c.settle(FAILOVER_BOUND + 5, false);
    expect(c.coordinators().sort()).toEqual([2, 5]);
    const e2 = epochOf(c, 2);
    expect(e2).toBeGreaterThan(epochOf(c, 5));
    c.heal();
    c.settle(HEARTBEAT + 5, false);
    expect(c.coordinators()).toEqual([2]);
    expect(epochOf(c, 5)).toBe(e2);
  });

  it('concurrent coordinators of one epoch settle on a token at least as large as either', () => {
    // 2 and 4 are cut off from each other but both from 5 (which is down): each
    // elects itself at epoch 2 on its own side, then they meet.
    const c = new Cluster({ seed: 10, members: [1, 2, 3, 4, 5], options: { preempt: false } });
    c.settle(40);
    c.crash(5);
    c.partition([1, 2], [3, 4]);
    c.settle(FAILOVER_BOUND + 5, false);
    expect(c.coordinators().sort()).toEqual([2, 4]);
    expect(epochOf(c, 2)).toBe(epochOf(c, 4));
    c.heal();
    c.settle(HEARTBEAT + 10, false); // settledProblem also checks the survivor's token is the largest held
    expect(c.coordinators()).toEqual([4]);
  });
});
