/**
 * Structured logs of a real node: pino, one JSON object per line on stdout (journald
 * keeps them; `journalctl -u quorumd -o cat | npx pino-pretty` reads them).
 * The runtime logs through its injected `Logger` (daemon/runtime/logger.ts); this
 * adapts it to pino so that its fields become JSON fields.
 */
import { pino, type Logger as Pino } from 'pino';
import type { Logger } from './runtime/logger.ts';

export type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** A pino logger on stdout (fd 1, synchronous writes so that nothing is lost at exit). */
export function createPino(level: LevelName, base: Record<string, unknown> = {}): Pino {
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}

/** The runtime's Logger over pino. */
export function runtimeLogger(p: Pino): Logger {
  return (level, msg, fields) => {
    if (!fields) return p[level](msg);
    // The runtime names its own node by number (`node: 2`: the simulator's trace has
    // many nodes in one log); this process's pino already carries the node's name under
    // `node`, and a second `node` key in the same JSON line replaced the name for most
    // readers (jq, JSON.parse keep the last one).
    if (typeof fields.node === 'number') {
      const { node: _own, ...rest } = fields;
      p[level](rest, msg);
    } else p[level](fields, msg);
  };
}
