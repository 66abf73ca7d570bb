/**
 * A randomized run of the ZAB harness: client load, crashes (some while persisting, a
 * torn Ready; some between two Readys), restarts, partitions, loss, duplication and
 * reordering, snapshots — every invariant checked after every step — then healing:
 * the cluster must converge (one leader, every data node applies the same sequence,
 * a final write everywhere). Shared by the sweep tests and the planted-bug tests.
 */
import { Rng } from '../../../src/rng.ts';
import type { ZabOptions } from '../../../src/zab/index.ts';
import type { NodeId } from '../../../src/types.ts';
import { Cluster } from './harness.ts';

export interface ChaosOptions {
  voters: number;
  witnesses?: number;
  observers?: number;
  ticks?: number;
  snapshots?: boolean;
  /** Probability per tick of each fault kind (defaults below). */
  crash?: number;
  torn?: number;
  partition?: number;
  reads?: boolean;
  net?: { drop: number; dup: number; minDelay: number; maxDelay: number };
  options?: Partial<ZabOptions>;
  nodeOptions?: Record<NodeId, Partial<ZabOptions>>;
  /** Skip the convergence phase (planted bugs only need the safety checks). */
  noConverge?: boolean;
}

export interface ChaosResult {
  c: Cluster;
  proposed: number;
  applied: number;
  establishments: number;
  reads: number;
}

export function chaos(seed: number, o: ChaosOptions): ChaosResult {
  const voters = Array.from({ length: o.voters }, (_, i) => i + 1);
  const witnesses = Array.from({ length: o.witnesses ?? 0 }, (_, i) => o.voters + i + 1);
  const observers = Array.from({ length: o.observers ?? 0 }, (_, i) => o.voters + (o.witnesses ?? 0) + i + 1);
  const all = [...voters, ...witnesses, ...observers];
  const voting = [...voters, ...witnesses];
  const c = new Cluster({
    seed, voters, witnesses, observers,
    net: o.net ?? { drop: 0.05, dup: 0.03, minDelay: 0, maxDelay: 6 },
    options: o.options, nodeOptions: o.nodeOptions, wire: seed % 7 === 0,
  });
  const rng = new Rng(seed).fork('chaos');
  const pCrash = o.crash ?? 0.01;
  const pTorn = o.torn ?? 0.005;
  const pPart = o.partition ?? 0.01;
  let proposed = 0;
  const ticks = o.ticks ?? 400;
  const quorum = Math.floor(voting.length / 2) + 1;
  for (let t = 0; t < ticks; t++) {
    const r = rng.float();
    const downVoting = voting.filter((id) => !c.node(id).up).length;
    if (r < 0.3) {
      if (c.propose(`s${seed}-${proposed}`) !== undefined) proposed++;
    } else if (r < 0.3 + pCrash) {
      const id = rng.pick(all);
      // Keep a quorum possible most of the time (crashes beyond it are tested separately).
      if (c.node(id).up && (!voting.includes(id) || voting.length - downVoting - 1 >= quorum - 1)) {
        if (rng.chance(0.3)) c.crashAfterNextReady(id);
        else c.crash(id);
      }
    } else if (r < 0.3 + pCrash + pTorn) {
      const id = rng.pick(all);
      if (c.node(id).up) c.tearNext(id);
    } else if (r < 0.33 + pCrash + pTorn) {
      const id = rng.pick(all);
      if (!c.node(id).up) c.restart(id);
    } else if (r < 0.33 + pCrash + pTorn + pPart) {
      const shuffled = all.slice().sort(() => rng.float() - 0.5);
      const k = rng.int(1, all.length - 1);
      c.heal();
      c.partition(shuffled.slice(0, k), shuffled.slice(k));
    } else if (r < 0.35 + pCrash + pTorn + pPart) {
      c.heal();
    } else if (o.snapshots && r < 0.357 + pCrash + pTorn + pPart) {
      const up = c.up();
      if (up.length > 0) {
        const n = rng.pick(up);
        if (n.applied > n.z.snapshotIndex) c.compact(n.id);
      }
    } else if (o.reads && r < 0.38 + pCrash + pTorn + pPart) {
      const up = c.up();
      if (up.length > 0) c.read(rng.pick(up).id);
    }
    c.tick();
  }
  const establishments = c.inv.counts.establishments;
  if (o.noConverge) return { c, proposed, applied: 0, establishments, reads: c.inv.counts.reads };
  // Heal everything; the cluster must converge.
  c.heal();
  c.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 1 };
  for (const id of all) {
    if (!c.node(id).up) c.restart(id);
    c.node(id).tear = false;
    c.node(id).crashAfterReady = false;
  }
  const dataNodes = [...voters, ...observers];
  // A write to a leader about to be deposed may be lost (a client retries): retry
  // until one is applied everywhere, then let every node catch up with the leader.
  const done = () => {
    const l = c.leader();
    return l !== undefined && l.z.commitIndex > 0 && dataNodes.every((id) => c.node(id).up && c.node(id).applied === l.z.commitIndex && c.appliedData(id).includes('final'));
  };
  for (let k = 0; k < 20 && !done(); k++) {
    c.run(60);
    if (!c.appliedData(voters[0]!).includes('final')) c.propose('final');
    c.run(60);
  }
  if (!done()) {
    const st = all.map((id) => c.node(id).z.status()).map((s) => `${s.id}:${s.state}/${s.phase} acc=${s.acceptedEpoch} cur=${s.currentEpoch} commit=${s.commitIndex} last=${s.lastIndex}`);
    throw new Error(`seed ${seed}: no convergence after healing: ${st.join('; ')}`);
  }
  const ref = c.appliedData(voters[0]!);
  for (const id of dataNodes) {
    const got = c.appliedData(id);
    if (got.length !== ref.length || got.some((x, i) => x !== ref[i])) {
      const at = got.findIndex((x, i) => x !== ref[i]);
      throw new Error(`seed ${seed}: node ${id} applied a different sequence (${got.length} vs ${ref.length} on node ${voters[0]}; first difference at ${at}: ${got[at]} vs ${ref[at]})`);
    }
  }
  return { c, proposed, applied: ref.length, establishments, reads: c.inv.counts.reads };
}
