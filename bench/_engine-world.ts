/**
 * The simulated cluster of bench/engines.ts and bench/engine-writes.ts: one World (the
 * MQTT broker model's defaults, latency 1–5 ms), n boards, each engine's runtime with
 * its defaults and its durable state on simulated flash, and a count of every frame
 * every board hands to a link (bytes with the tag, before link framing; "wire" with
 * the MQTT PUBLISH framing added).
 */
import { createHash } from 'node:crypto';
import { World } from '../firmware-sim/world.ts';
import type { Link } from '../hal/interfaces.ts';
import { EngineRuntime } from '../daemon/runtime/engine-node.ts';
import type { NodeId } from '../src/types.ts';

export type Engine = 'raft' | 'bully' | 'paxos' | 'zab';
export interface Rt {
  id: NodeId;
  isLeader: boolean;
  state: string;
  status(): { leader: NodeId };
  /** Raft and the engine runtime (bully has no KV). */
  put?(key: string, value: Uint8Array, opts: { cas?: number }, cb: (r: { status: number; error?: string }) => void): void;
}

const KEY = { current: new Uint8Array(createHash('sha256').update('bench-engines').digest()) };
const CLUSTER = 1;

/** MQTT 3.1.1 PUBLISH, QoS 0: 1 byte type + varint remaining length + 2 + topic + payload. */
export function mqttBytes(to: NodeId, payload: number): number {
  const topic = `quorumd/${CLUSTER}/to/${to}`.length;
  const rem = 2 + topic + payload;
  return 1 + (rem < 128 ? 1 : rem < 16384 ? 2 : 3) + rem;
}

export function cluster(engine: Engine, seed: number, n: number) {
  const world = new World({ seed });
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (const id of ids) world.addBoard(id);
  const rts = new Map<NodeId, Rt>();
  const count = { frames: 0, bytes: 0, wire: 0 };
  const counted = (l: Link): Link => ({
    name: l.name,
    maxFrame: l.maxFrame,
    send: (to, f) => {
      count.frames++;
      count.bytes += f.length;
      count.wire += mqttBytes(to, f.length);
      l.send(to, f);
    },
    onFrame: (h) => l.onFrame(h),
    onEvent: (h) => l.onEvent(h),
    close: (d) => l.close(d),
  });
  world.onBoot((hal, board) => {
    const common = { id: hal.node, cluster: CLUSTER, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links.map(counted), rng: world.rng.fork(`e:${hal.node}:${hal.incarnation}`), onFatal: () => board.crashProcess() };
    const config = { voters: ids, learners: [], witnesses: [] };
    const rt = new EngineRuntime({ ...common, engine, config });
    rts.set(hal.node, rt as Rt);
    rt.start();
  });
  const live = () => [...rts.values()].filter((r) => r.state === 'running' && world.board(r.id).running);
  const agreed = (): NodeId | undefined => {
    const l = live();
    const leaders = l.filter((r) => r.isLeader);
    if (leaders.length !== 1) return undefined;
    const id = leaders[0]!.id;
    return l.every((r) => r.status().leader === id) ? id : undefined;
  };
  return { world, count, agreed, live };
}

export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

