/**
 * A World with an engine runtime running Raft on every board (rebuilt at every boot), for the
 * benchmarks. Not a benchmark itself (bench/run.ts skips files starting with "_").
 */
import { createHash } from 'node:crypto';
import { World } from '../firmware-sim/world.ts';
import type { Link } from '../hal/interfaces.ts';
import { EngineRuntime, type EngineRuntimeOptions } from '../daemon/runtime/engine-node.ts';
import type { NodeId } from '../src/types.ts';

export interface BenchCluster {
  world: World;
  rt: Map<NodeId, EngineRuntime>;
  /** Frame bytes handed to links by all nodes (every link, every copy). */
  wire: { frames: number; bytes: number };
  live(): EngineRuntime[];
  liveData(): EngineRuntime[];
  leader(): EngineRuntime | undefined;
}

export function benchCluster(opts: { seed: number; ids: NodeId[]; witnesses?: NodeId[]; runtime?: Partial<EngineRuntimeOptions> }): BenchCluster {
  const world = new World({ seed: opts.seed, board: { bootDelayMs: 100 } });
  const witnesses = opts.witnesses ?? [];
  const voters = opts.ids.filter((i) => !witnesses.includes(i));
  for (const id of opts.ids) world.addBoard(id);
  const rt = new Map<NodeId, EngineRuntime>();
  const inc = new Map<EngineRuntime, number>();
  const wire = { frames: 0, bytes: 0 };
  const key = { current: new Uint8Array(createHash('sha256').update('bench').digest()) };
  const count = (l: Link): Link => ({
    name: l.name,
    maxFrame: l.maxFrame,
    send: (to, frame) => {
      wire.frames++;
      wire.bytes += frame.length;
      l.send(to, frame);
    },
    onFrame: (h) => l.onFrame(h),
    onEvent: (h) => l.onEvent(h),
    close: (d) => l.close(d),
  });
  world.onBoot((hal, board) => {
    const r = new EngineRuntime({
      engine: 'raft',
      id: hal.node,
      config: { voters, learners: [], witnesses },
      cluster: 1,
      keyring: key,
      clock: hal.clock,
      storage: hal.storage,
      links: hal.links.map(count),
      rng: world.rng.fork(`n${hal.node}:${hal.incarnation}`),
      onFatal: () => board.crashProcess(),
      ...opts.runtime,
    });
    rt.set(hal.node, r);
    inc.set(r, hal.incarnation);
    r.start();
  });
  const isLive = (r: EngineRuntime) => r.state === 'running' && world.board(r.id).hal !== null && world.board(r.id).incarnation === inc.get(r);
  const live = () => [...rt.values()].filter(isLive);
  return {
    world,
    rt,
    wire,
    live,
    liveData: () => live().filter((r) => !witnesses.includes(r.id)),
    leader: () => live().find((r) => r.isLeader),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
