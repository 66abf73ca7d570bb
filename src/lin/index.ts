/** Linearizability checking of client histories (DESIGN §7). */
export * from './history.ts';
export * from './check.ts';
