/**
 * One randomized run of the Multi-Paxos harness, shared by the sweep tests and the
 * planted-bug tests: faults for `ticks`, then the network heals, every node returns,
 * and the cluster must converge (every live replica applies the same sequence,
 * KV histories linearizable).
 */
import { Rng } from '../../../src/rng.ts';
import { checkLinearizable } from '../../../src/lin/index.ts';
import type { PaxosOptions } from '../../../src/paxos/index.ts';
import type { NodeId } from '../../../src/types.ts';
import { Cluster } from './harness.ts';

export interface ChaosOptions {
  nodes: number;
  witness?: boolean;
  learner?: boolean;
  ticks?: number;
  snapshots?: boolean;
  torn?: number;
  crashAfterReady?: number;
  clients?: number;
  options?: Partial<PaxosOptions>;
  nodeOptions?: Record<NodeId, Partial<PaxosOptions>>;
  check?: boolean;
  brokenAtomicity?: boolean;
  net?: { drop: number; dup: number; minDelay: number; maxDelay: number };
  /** Return early (no convergence phase) once an invariant is violated (with check: false). */
  stopOnViolation?: boolean;
  /** Invariant checks to switch off (to show which other check catches a planted bug). */
  disabled?: string[];
  /** Encode every message with the real wire codec (validity, frame sizes in c.maxFrame). */
  wire?: boolean;
}

export interface ChaosResult {
  c: Cluster;
  applied: number;
  settleTicks: number;
  histories: number;
  lin: ReturnType<typeof checkLinearizable> | undefined;
  /** Convergence problems (only returned, not thrown, when `check` is off). */
  problems: string[];
}

export function chaos(seed: number, o: ChaosOptions): ChaosResult {
  const voters = Array.from({ length: o.nodes }, (_, i) => i + 1);
  const witnesses = o.witness ? [voters.pop()!] : [];
  const learners = o.learner ? [o.nodes + 1] : [];
  const c = new Cluster({
    seed, voters, witnesses, learners,
    net: o.net ?? { drop: 0.05, dup: 0.05, minDelay: 0, maxDelay: 6 },
    options: o.options, nodeOptions: o.nodeOptions,
    tornRate: o.torn ?? 0, crashAfterReadyRate: o.crashAfterReady ?? 0,
    check: o.check ?? true, brokenAtomicity: o.brokenAtomicity, wire: o.wire ?? false,
  });
  for (const d of o.disabled ?? []) c.inv.disabled.add(d);
  const all = [...voters, ...witnesses, ...learners];
  const rng = new Rng(seed).fork('chaos');
  const clients = o.clients ? c.startClients(o.clients, ['a', 'b', 'c']) : undefined;
  let proposed = 0;
  const ticks = o.ticks ?? 400;
  for (let t = 0; t < ticks; t++) {
    const r = rng.float();
    if (r < 0.3) {
      if (!clients && c.propose(`s${seed}-${proposed}`) !== undefined) proposed++;
    } else if (r < 0.31) {
      const id = rng.pick(all);
      if (c.node(id).up && c.up().length > 1) c.crash(id, rng.int(5, 60));
    } else if (r < 0.32) {
      const shuffled = all.slice().sort(() => rng.float() - 0.5);
      const k = rng.int(1, all.length - 1);
      c.heal();
      c.partition(shuffled.slice(0, k), shuffled.slice(k));
    } else if (r < 0.34) {
      c.heal();
    } else if (o.snapshots && r < 0.35 && c.up().length > 0) {
      const n = rng.pick(c.up());
      if (n.applied > n.e.status().snapshotIndex) c.compact(n.id);
    }
    c.tick();
    if (o.stopOnViolation && !c.inv.ok) return { c, applied: 0, settleTicks: -1, histories: 0, lin: undefined, problems: [] };
  }
  // Faults stop: heal, bring everyone back, no more torn writes or power cuts.
  c.heal();
  c.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 1 };
  c.tornRate = 0;
  c.crashAfterReadyRate = 0;
  for (const id of all) if (!c.node(id).up) c.restart(id);
  if (clients) clients.stopped = true;
  const start = c.now;
  // A proposal made to a leader about to be deposed is lost; a client retries.
  const dataNodes = [...voters, ...learners];
  const done = () => dataNodes.every((id) => c.appliedData(id).at(-1) === 'final');
  for (let k = 0; k < 40 && !done(); k++) {
    c.run(20);
    c.propose('final');
    c.run(40);
    if (o.stopOnViolation && !c.inv.ok) return { c, applied: 0, settleTicks: -1, histories: 0, lin: undefined, problems: [] };
  }
  // With `check` off (planted-bug runs) a broken cluster may not converge: say so in
  // the result instead of throwing, so that the history can still be checked.
  const problems: string[] = [];
  if (!done()) problems.push(`seed ${seed}: no convergence after healing (t=${c.now}); applied ${dataNodes.map((id) => `${id}:${c.node(id).applied}`).join(' ')}`);
  const settleTicks = c.now - start;
  // Every data replica ends with the same sequence (a second 'final' may still be on its way: let it land).
  for (let k = 0; k < 200 && new Set(dataNodes.map((id) => c.node(id).applied)).size > 1; k++) c.tick();
  const ref = c.appliedData(voters[0]!);
  for (const id of dataNodes) {
    const mine = c.appliedData(id);
    if (mine.length !== ref.length || mine.some((x, i) => x !== ref[i])) {
      const k = mine.findIndex((x, i) => x !== ref[i]);
      problems.push(`seed ${seed}: node ${id} applied a different sequence (${mine.length} vs ${ref.length} entries, first difference at ${k}: ${mine[k]} vs ${ref[k]})`);
    }
  }
  let lin: ChaosResult['lin'];
  let histories = 0;
  if (clients) {
    const h = clients.finish();
    histories = h.length;
    lin = checkLinearizable(h);
  }
  if (problems.length > 0 && (o.check ?? true)) throw new Error(problems[0]);
  return { c, applied: ref.length, settleTicks, histories, lin, problems };
}
