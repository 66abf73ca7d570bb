/** The replicated key-value and lock state machine (DESIGN §6). */
export * from './commands.ts';
export * from './state-machine.ts';
export * from './lease.ts';
export * from './quota.ts';
