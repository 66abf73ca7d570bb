/**
 * A small World with a Raft node on the engine runtime (EngineRuntime, engine raft) on
 * every board, rebuilt at every boot (as the simulator does), for the runtime tests.
 */
import { createHash } from 'node:crypto';
import { World, type WorldOptions } from '../../../firmware-sim/world.ts';
import type { BoardHal } from '../../../firmware-sim/board.ts';
import { EngineRuntime, type EngineRuntimeOptions } from '../../../daemon/runtime/engine-node.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';
import type { NodeId } from '../../../src/types.ts';
import type { Clock } from '../../../hal/interfaces.ts';

export const KEY = { current: new Uint8Array(createHash('sha256').update('runtime-test').digest()) };

export interface TestCluster {
  world: World;
  rt: Map<NodeId, EngineRuntime>;
  logs: string[];
  fatals: Array<{ node: NodeId; err: Error }>;
  leader(): EngineRuntime | undefined;
  leaders(): EngineRuntime[];
  /** Runs until `pred` or `maxMs` of virtual time; returns whether pred held. */
  until(pred: () => boolean, maxMs: number): boolean;
  /** Issues a request and runs until its callback (bounded); returns the result or undefined. */
  call(fn: (cb: (r: ClientResult) => void) => void, maxMs?: number): ClientResult | undefined;
}

export function testCluster(
  ids: NodeId[],
  opts: {
    seed?: number;
    world?: Partial<WorldOptions>;
    witnesses?: NodeId[];
    runtime?: Partial<EngineRuntimeOptions>;
    /** Options that depend on the boot's HAL (fencing: watchdog, relays, power-sense). */
    perBoot?: (hal: BoardHal) => Partial<EngineRuntimeOptions>;
    /** Wiring before the first boot (relays, senses). */
    wire?: (world: World) => void;
  } = {},
): TestCluster {
  const world = new World({ seed: opts.seed ?? 1, board: { bootDelayMs: 100, restartDelayMs: 100 }, ...opts.world });
  const witnesses = opts.witnesses ?? [];
  const voters = ids.filter((i) => !witnesses.includes(i));
  for (const id of ids) world.addBoard(id);
  opts.wire?.(world);
  const rt = new Map<NodeId, EngineRuntime>();
  const logs: string[] = [];
  const fatals: Array<{ node: NodeId; err: Error }> = [];
  world.onBoot((hal, board) => {
    const r = new EngineRuntime({
      engine: 'raft',
      id: hal.node,
      config: { voters, learners: [], witnesses },
      cluster: 7,
      keyring: KEY,
      clock: hal.clock,
      storage: hal.storage,
      links: hal.links,
      rng: world.rng.fork(`node:${hal.node}:${hal.incarnation}`),
      logger: (level, msg, f) => {
        if (level !== 'debug') logs.push(`${world.nowMs.toFixed(1)} ${level} ${msg} ${JSON.stringify(f ?? {})}`);
      },
      onFatal: (err) => {
        fatals.push({ node: hal.node, err });
        board.crashProcess();
      },
      ...opts.runtime,
      ...opts.perBoot?.(hal),
    });
    rt.set(hal.node, r);
    r.start();
  });
  const running = () => [...rt.values()].filter((r) => r.state === 'running' && world.board(r.id).hal !== null && world.board(r.id).incarnation === incarnationOf(r));
  const incs = new Map<EngineRuntime, number>();
  const incarnationOf = (r: EngineRuntime) => incs.get(r) ?? world.board(r.id).incarnation;
  const tc: TestCluster = {
    world,
    rt,
    logs,
    fatals,
    leaders: () => running().filter((r) => r.isLeader),
    leader: () => running().find((r) => r.isLeader),
    until: (pred, maxMs) => world.runUntil(pred, maxMs),
    call: (fn, maxMs = 5000) => {
      let res: ClientResult | undefined;
      fn((r) => (res = r));
      world.runUntil(() => res !== undefined, maxMs);
      return res;
    },
  };
  return tc;
}

export const bytes = (s: string) => new TextEncoder().encode(s);
export const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

/** A board's clock that can jump (a stalled process sees time leap) and records the delay of every timer armed through it. */
export function stallableClock(inner: Clock): { clock: Clock; jump(ms: number): void; delays: number[] } {
  let offset = 0;
  const delays: number[] = [];
  return {
    delays,
    jump: (ms) => void (offset += ms),
    clock: {
      monotonicMs: () => inner.monotonicMs() + offset,
      wallMs: () => inner.wallMs() + offset,
      setTimer: (ms, fn) => {
        delays.push(ms);
        return inner.setTimer(ms, fn);
      },
    },
  };
}
