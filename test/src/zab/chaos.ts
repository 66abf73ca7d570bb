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
  reads?: boolean;
  /** Probability per tick of each fault (defaults in parentheses). */
  crash?: number; // a random node loses power between inputs (0.007)
  crashMid?: number; // a random node loses power between two Readys of one input (0.003)
  torn?: number; // a random node loses power while persisting its next Ready (0.005)
  leaderFault?: number; // the leading node (any phase) is crashed or cut off (0.004)
  restart?: number; // a random crashed node restarts (0.02)
  partition?: number; // a new random partition (0.01)
  heal?: number; // all partitions heal (0.02)
  net?: { drop: number; dup: number; minDelay: number; maxDelay: number };
  options?: Partial<ZabOptions>;
  nodeOptions?: Record<NodeId, Partial<ZabOptions>>;
  /** Skip the convergence phase (planted bugs only need the safety checks). */
  noConverge?: boolean;
  /** Invariant rules to switch off. */
  rules?: { acknowledgements?: boolean; establishment?: boolean };
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
  const c = new Cluster({
    seed, voters, witnesses, observers,
    net: o.net ?? { drop: 0.05, dup: 0.03, minDelay: 0, maxDelay: 6 },
    options: o.options, nodeOptions: o.nodeOptions, rules: o.rules, wire: seed % 7 === 0,
  });
  const rng = new Rng(seed).fork('chaos');
  const p = {
    crash: o.crash ?? 0.007, crashMid: o.crashMid ?? 0.003, torn: o.torn ?? 0.005, leaderFault: o.leaderFault ?? 0.004,
    restart: o.restart ?? 0.02, partition: o.partition ?? 0.01, heal: o.heal ?? 0.02,
  };
  let proposed = 0;
  const ticks = o.ticks ?? 400;
  const upIds = () => all.filter((id) => c.node(id).up);
  for (let t = 0; t < ticks; t++) {
    if (rng.chance(0.3) && c.propose(`s${seed}-${proposed}`) !== undefined) proposed++;
    if (rng.chance(p.crash)) {
      const id = rng.pick(all);
      if (c.node(id).up) c.crash(id);
    }
    if (rng.chance(p.crashMid)) {
      const id = rng.pick(all);
      if (c.node(id).up) c.crashAfterNextReady(id);
    }
    if (rng.chance(p.torn)) {
      const id = rng.pick(all);
      if (c.node(id).up) c.tearNext(id);
    }
    if (rng.chance(p.leaderFault)) {
      const l = c.up().find((n) => n.z.zabState === 'leading');
      if (l) {
        if (rng.chance(0.5)) c.crash(l.id);
        else {
          c.heal();
          c.isolate(l.id);
        }
      }
    }
    if (rng.chance(p.restart)) {
      const down = all.filter((id) => !c.node(id).up);
      if (down.length > 0) c.restart(rng.pick(down));
    }
    if (rng.chance(p.partition)) {
      const shuffled = all.slice().sort(() => rng.float() - 0.5);
      const k = rng.int(1, all.length - 1);
      c.heal();
      c.partition(shuffled.slice(0, k), shuffled.slice(k));
    }
    if (rng.chance(p.heal)) c.heal();
    if (o.snapshots && rng.chance(0.007)) {
      const up = upIds();
      if (up.length > 0) {
        const n = c.node(rng.pick(up));
        if (n.applied > n.z.snapshotIndex) c.compact(n.id);
      }
    }
    if (o.reads && rng.chance(0.03)) {
      const up = upIds();
      if (up.length > 0) c.read(rng.pick(up));
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
