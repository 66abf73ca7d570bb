/** Linearizability checking of client histories (docs/sim.md). */
export * from './history.ts';
export * from './check.ts';
