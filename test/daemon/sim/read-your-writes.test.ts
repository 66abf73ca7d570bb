/**
 * Read your writes on the node you wrote through, under every fault the simulator has:
 * after each put answered 200, the workload reads the key with `stale` on the same node
 * at once (daemon/sim/workload.ts readYourWrites) and the run fails with
 * `read-your-writes` if that read does not see the write (or a later one). The one
 * documented exception — a follower that answers a forwarded write at its request
 * timeout before it could apply it — is counted apart (skipped).
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';

describe('read your writes through the same node (simulated, all faults)', () => {
  it.each(['raft', 'paxos', 'zab'] as const)('%s: every stale read right after a write through that node sees it', (engine) => {
    const cfg = parseSimOptions({ seeds: '1..3', nodes: 3, time: '15s', faults: 'partition,crash,power,loss,reorder,clock,disk,stall', engine });
    let checked = 0;
    for (const seed of cfg.seeds) {
      const r = runEngineSeed(cfg, seed, { workload: { readYourWrites: true, clients: 8 } });
      expect(r.violation, `seed ${seed}: ${r.violation?.invariant} ${r.violation?.detail}`).toBeUndefined();
      expect(r.lin).toBe('ok');
      expect(r.readYourWrites!.missed).toBe(0);
      checked += r.readYourWrites!.checked;
    }
    // Enough writes answered through followers and leaders alike to mean something.
    expect(checked).toBeGreaterThan(1000);
  }, 300_000);
});
