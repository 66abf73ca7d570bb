/** The node runtime: one engine wired to one board's HAL (used by `quorumd sim` and `quorumd start`). */
export { NodeRuntime } from './node.ts';
export { resultToClient } from './results.ts';
export type { NodeRuntimeOptions, NodeStatus, RuntimeObserver, RuntimeState } from './node.ts';
export { InternalError } from './fatal.ts';
export { Status, type ClientResult, type ClientCallback } from './results.ts';
export { nullLogger, filterLogger, formatLine, type Logger, type LogLevel } from './logger.ts';
