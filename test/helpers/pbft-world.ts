/**
 * Four (or more) pbft boards on a simulated World in virtual time, each running the one
 * EngineRuntime: the cluster the runtime's pbft tests share. `call` runs one client
 * request to its answer (bounded in virtual time).
 */
import { createHash } from 'node:crypto';
import { World } from '../../firmware-sim/world.ts';
import { EngineRuntime } from '../../daemon/runtime/engine-node.ts';
import type { ClientResult } from '../../daemon/runtime/results.ts';
import type { NodeId } from '../../src/types.ts';

export function pbftWorld(opts: { seed: number; keyText: string; ids?: NodeId[] }) {
  const ids = opts.ids ?? [1, 2, 3, 4];
  const keyring = { current: new Uint8Array(createHash('sha256').update(opts.keyText).digest()) };
  const world = new World({ seed: opts.seed, board: { bootDelayMs: 100, restartDelayMs: 100 } });
  for (const id of ids) world.addBoard(id);
  const rt = new Map<NodeId, EngineRuntime>();
  const fatals: string[] = [];
  world.onBoot((hal, board) => {
    const r = new EngineRuntime({
      engine: 'pbft', id: hal.node, config: { voters: ids, learners: [], witnesses: [] }, cluster: 3, keyring, clock: hal.clock, storage: hal.storage, links: hal.links,
      rng: world.rng.fork(`p:${hal.node}:${hal.incarnation}`),
      engineOptions: { checkpointInterval: 4 },
      onFatal: (err) => {
        fatals.push(`n${hal.node}: ${err.message}`);
        board.crashProcess(60_000);
      },
    });
    rt.set(hal.node, r);
    r.start();
  });
  const call = (fn: (cb: (r: ClientResult) => void) => void, maxMs = 20_000): ClientResult | undefined => {
    let got: ClientResult | undefined;
    fn((r) => (got = r));
    world.runUntil(() => got !== undefined, maxMs);
    return got;
  };
  return { world, rt, fatals, call, keyring, ids };
}
