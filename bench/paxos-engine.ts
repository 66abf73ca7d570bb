/**
 * Multi-Paxos vs Raft at the engine level, in the link model of
 * test/src/bully/compare.test.ts: 5 boards, reliable links with a one-tick delay,
 * 10 ms ticks, each engine's default options, every Ready handled in contract order.
 *
 *   - failover: the leader crashes at every phase of the heartbeat period (40 seeds);
 *     ticks until every live board names the same new leader, and the messages and
 *     wire bytes (codec frames, tag included, worst-case envelope) sent meanwhile;
 *     for Paxos also until the new leader's start slot is chosen (its token issued);
 *   - idle: messages and bytes per 5 s with no load;
 *   - writes: 16 clients each keep one 40-byte command outstanding for 10 s of virtual
 *     time; committed writes per second of virtual time, and messages and bytes per
 *     committed write (batching shows here).
 *
 *   npm run bench -- paxos-engine
 *
 * Engine costs only: the whole-cluster simulator (daemon/sim) adds link timing, the
 * broker, storage and the runtime once Paxos is plugged into it.
 */
import { Rng } from '../src/rng.ts';
import { RaftNode } from '../src/raft/index.ts';
import { PaxosNode } from '../src/paxos/index.ts';
import { encodeFrame } from '../src/wire/codec.ts';
import type { Message } from '../src/wire/messages.ts';
import type { NodeId } from '../src/types.ts';

const IDS = [1, 2, 3, 4, 5];
const SEEDS = 40;
const KEY = new Uint8Array(32);
const bytesOf = (m: Message) => encodeFrame(m, { cluster: 1, bootId: 0xffff, seq: 0xffff }, KEY).length;

interface Node {
  tick(): void;
  step(m: Message): void;
  ready(): { messages: Message[]; committed: { index: number }[] } | undefined;
  advance(rd: never): void;
  readonly isLeader: boolean;
  propose(d: Uint8Array): { ok: boolean };
}

type Kind = 'raft' | 'paxos';

class Bench {
  now = 0;
  messages = 0;
  bytes = 0;
  committed = 0;
  readonly nodes = new Map<NodeId, Node | undefined>();
  private queue = new Map<number, Message[]>();
  constructor(readonly kind: Kind, seed: number) {
    const rng = new Rng(seed);
    const config = { voters: IDS, learners: [], witnesses: [] };
    for (const id of IDS) {
      const r = rng.fork(`${kind} ${id}`);
      this.nodes.set(id, (kind === 'raft' ? new RaftNode({ id, config, rng: r }) : new PaxosNode({ id, config, rng: r })) as unknown as Node);
    }
  }
  leaderOf(id: NodeId): NodeId {
    const n = this.nodes.get(id)!;
    return this.kind === 'raft' ? (n as unknown as RaftNode).status().leader : (n as unknown as PaxosNode).leaderId;
  }
  flush(id: NodeId): void {
    const r = this.nodes.get(id);
    if (!r) return;
    for (let k = 0; k < 5; k++) {
      const rd = r.ready();
      if (!rd) return;
      for (const m of rd.messages) {
        this.messages++;
        this.bytes += bytesOf(m);
        const at = this.now + 1;
        if (!this.queue.has(at)) this.queue.set(at, []);
        this.queue.get(at)!.push(m);
      }
      if (r.isLeader) this.committed += rd.committed.length;
      r.advance(rd as never);
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
  agreed(): NodeId | undefined {
    const live = IDS.filter((id) => this.nodes.get(id));
    const leaders = live.filter((id) => this.nodes.get(id)!.isLeader);
    if (leaders.length !== 1) return undefined;
    const l = leaders[0]!;
    return live.every((id) => this.leaderOf(id) === l) ? l : undefined;
  }
  until(pred: () => boolean, max: number): number {
    for (let i = 0; i <= max; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`${this.kind} bench: not reached within ${max} ticks`);
  }
  reset(): void {
    this.messages = 0;
    this.bytes = 0;
    this.committed = 0;
  }
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

function failover(kind: Kind) {
  const t: number[] = [];
  const tok: number[] = [];
  const m: number[] = [];
  const b: number[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = new Bench(kind, seed);
    r.until(() => r.agreed() !== undefined, 300);
    for (let i = 0; i < 20 + (seed % 5); i++) r.tick(); // crash at every phase of the heartbeat period
    const leader = r.agreed()!;
    r.reset();
    r.nodes.set(leader, undefined);
    t.push(r.until(() => r.agreed() !== undefined, 300));
    m.push(r.messages);
    b.push(r.bytes);
    if (kind === 'paxos') {
      const l = r.nodes.get(r.agreed()!) as unknown as PaxosNode;
      tok.push(t[t.length - 1]! + r.until(() => l.leaderToken() > 0, 100));
    }
  }
  return { t, tok, m, b };
}

function idle(kind: Kind) {
  const r = new Bench(kind, 99);
  r.until(() => r.agreed() !== undefined, 300);
  r.reset();
  for (let i = 0; i < 500; i++) r.tick();
  return { m: r.messages, b: r.bytes };
}

function writes(kind: Kind) {
  const r = new Bench(kind, 7);
  r.until(() => r.agreed() !== undefined, 300);
  for (let i = 0; i < 20; i++) r.tick();
  const leader = r.nodes.get(r.agreed()!)!;
  const cmd = new Uint8Array(40).fill(7);
  // 16 clients, one command outstanding each: propose again once one commits.
  let outstanding = 0;
  r.reset();
  const ticks = 1000;
  let done = 0;
  for (let i = 0; i < ticks; i++) {
    done = r.committed;
    while (outstanding - done < 16) {
      if (!leader.propose(cmd).ok) break;
      outstanding++;
    }
    r.tick();
  }
  const secs = (ticks * 10) / 1000;
  return { perSec: Math.round(r.committed / secs), msgsPerWrite: r.messages / r.committed, bytesPerWrite: r.bytes / r.committed };
}

for (const kind of ['raft', 'paxos'] as const) {
  const f = failover(kind);
  const i = idle(kind);
  const w = writes(kind);
  console.log(
    `${kind.padEnd(5)}: failover ms p50=${q(f.t, 0.5) * 10} p99=${q(f.t, 0.99) * 10} max=${Math.max(...f.t) * 10}` +
      (f.tok.length ? `; token issued ms p50=${q(f.tok, 0.5) * 10} max=${Math.max(...f.tok) * 10}` : '') +
      `; messages/failover p50=${q(f.m, 0.5)} max=${Math.max(...f.m)}; bytes/failover p50=${q(f.b, 0.5)} max=${Math.max(...f.b)}`,
  );
  console.log(`${kind.padEnd(5)}: idle per 5 s ${i.m} msgs ${i.b} B; 16 clients: ${w.perSec} writes/s (virtual), ${w.msgsPerWrite.toFixed(2)} msgs and ${w.bytesPerWrite.toFixed(0)} B per write`);
}
