/**
 * Bully vs Raft at the engine level, under the same link model: 5 boards, reliable
 * links with a one-tick delay, 10 ms ticks, default options of each engine, leader
 * crashed at every phase of the heartbeat period over 40 seeds. Measures the ticks
 * until every live board knows the new leader, and the messages and wire bytes
 * (codec frames with the tag) sent in that window. The whole-cluster simulator
 * (daemon/sim) will give the numbers with real link timing; these are the engines'
 * own costs, and the test asserts the one ordering that is structural: bully's idle
 * cost is half of Raft's (no replies to heartbeats).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { RaftNode } from '../../../src/raft/index.ts';
import type { Message } from '../../../src/wire/messages.ts';
import type { NodeId } from '../../../src/types.ts';
import { Cluster, wireBytes } from './harness.ts';

const IDS = [1, 2, 3, 4, 5];
const SEEDS = 40;

/** A minimal Raft cluster: reliable 1-tick links, Ready handled in contract order, no client load. */
class RaftBench {
  now = 0;
  messages = 0;
  bytes = 0;
  readonly nodes = new Map<NodeId, RaftNode | undefined>();
  private queue = new Map<number, Message[]>();
  constructor(seed: number) {
    const rng = new Rng(seed);
    for (const id of IDS) this.nodes.set(id, new RaftNode({ id, config: { voters: IDS, learners: [], witnesses: [] }, rng: rng.fork(`raft ${id}`) }));
  }
  private flush(id: NodeId): void {
    const r = this.nodes.get(id);
    if (!r) return;
    for (let k = 0; k < 3; k++) {
      const rd = r.ready();
      if (!rd) return;
      for (const m of rd.messages) {
        this.messages++;
        this.bytes += wireBytes(m);
        const at = this.now + 1;
        if (!this.queue.has(at)) this.queue.set(at, []);
        this.queue.get(at)!.push(m);
      }
      r.advance(rd);
    }
  }
  tick(): void {
    this.now++;
    for (const id of IDS) {
      const r = this.nodes.get(id);
      if (!r) continue;
      r.tick();
      this.flush(id);
    }
    const due = this.queue.get(this.now) ?? [];
    this.queue.delete(this.now);
    for (const m of due) {
      const r = this.nodes.get(m.to);
      if (!r) continue;
      r.step(m);
      this.flush(m.to);
    }
  }
  /** The leader every live board agrees on, or undefined. */
  agreed(): NodeId | undefined {
    const live = IDS.filter((id) => this.nodes.get(id));
    const leaders = live.filter((id) => this.nodes.get(id)!.isLeader);
    if (leaders.length !== 1) return undefined;
    const l = leaders[0]!;
    return live.every((id) => this.nodes.get(id)!.status().leader === l) ? l : undefined;
  }
  until(pred: () => boolean, max: number): number {
    for (let i = 0; i <= max; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`raft bench: not reached within ${max} ticks`);
  }
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

describe('bully vs raft, engine level, same link model', () => {
  it('failover time, messages and bytes per failover; idle cost', () => {
    const bully = { t: [] as number[], m: [] as number[], b: [] as number[] };
    const raft = { t: [] as number[], m: [] as number[], b: [] as number[] };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const c = new Cluster({ seed, members: IDS });
      c.settle(40);
      c.run(seed % 5);
      c.resetStats();
      const old = c.coordinators()[0]!;
      c.crash(old);
      bully.t.push(c.settle(100));
      bully.m.push(c.sent.messages);
      bully.b.push(c.sent.bytes);

      const r = new RaftBench(seed);
      r.until(() => r.agreed() !== undefined, 200);
      for (let i = 0; i < seed % 5; i++) r.tick(); // crash at every phase of the heartbeat period
      const leader = r.agreed()!;
      r.messages = 0;
      r.bytes = 0;
      r.nodes.set(leader, undefined);
      raft.t.push(r.until(() => r.agreed() !== undefined, 200));
      raft.m.push(r.messages);
      raft.b.push(r.bytes);
    }
    // idle: 100 heartbeat periods each
    const c = new Cluster({ seed: 99, members: IDS });
    c.settle(40);
    c.resetStats();
    c.run(500);
    const r = new RaftBench(99);
    r.until(() => r.agreed() !== undefined, 200);
    r.messages = 0;
    r.bytes = 0;
    for (let i = 0; i < 500; i++) r.tick();
    expect(c.sent.messages * 2).toBeLessThanOrEqual(r.messages + 10);
    expect(Math.max(...bully.t)).toBeLessThan(30);
    expect(Math.max(...raft.t)).toBeLessThan(60);
    const line = (name: string, x: typeof bully) =>
      `${name}: failover ticks p50=${q(x.t, 0.5)} p99=${q(x.t, 0.99)} max=${Math.max(...x.t)}; messages/failover p50=${q(x.m, 0.5)} max=${Math.max(...x.m)}; bytes/failover p50=${q(x.b, 0.5)} max=${Math.max(...x.b)}`;
    console.log(line('bully', bully));
    console.log(line('raft ', raft));
    console.log(`idle per 5 s: bully ${c.sent.messages} msgs ${c.sent.bytes} B; raft ${r.messages} msgs ${r.bytes} B`);
  });
});
