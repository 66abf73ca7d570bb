/**
 * A broken invariant in a simulated run, for every engine's checks (the shared ones in
 * engine-invariants.ts, Raft's in raft-invariants.ts, bully's in bully-invariants.ts, …):
 * thrown out of the scheduler, so the seed stops at once and reports it.
 */
export class SimViolation extends Error {
  override readonly name = 'SimViolation';
  constructor(
    readonly invariant: string,
    readonly detail: string,
    readonly atMs: number,
  ) {
    super(`${invariant}: ${detail}`);
  }
}
