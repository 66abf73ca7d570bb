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
    if (fields) p[level](fields, msg);
    else p[level](msg);
  };
}
