/** The replicated key-value and lock state machine (docs/api.md). */
export * from './commands.ts';
export * from './state-machine.ts';
export * from './lease.ts';
export * from './quota.ts';
