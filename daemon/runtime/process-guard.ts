/**
 * The last line of the fatal path: an exception nobody caught.
 *
 * The runtime catches what its own entry points throw (daemon/runtime/fatal.ts). A
 * library's event handler is not one of them: node-zookeeper-client, for one, decodes
 * server frames inside its socket handler and throws out of it on a frame it does not
 * expect. Node's default for an uncaught exception is to print the stack and exit 1 —
 * nothing answered, links not closed, the watchdog not told, and an exit status that
 * says "a definite no" instead of "restart me". Here such an exception, and a promise
 * rejection nobody handled, take the same way as a fatal error of the engine: logged
 * with its stack, the node stopped (pending requests answered, links closed), exit 70
 * (EX_SOFTWARE) for the supervisor. The process's state after an unknown exception
 * cannot be trusted, so the stop is bounded: after `graceMs` the process exits anyway.
 */
import { EXIT } from '../exit-codes.ts';

export interface ProcessGuardLog {
  fatal(fields: Record<string, unknown>, msg: string): void;
}

/**
 * Installs the handlers; `stop(err)` stops the node (idempotent). Returns a function
 * that removes them (for tests and for embedding, where the host owns the process).
 */
export function exitOnUncaught(log: ProcessGuardLog, stop: (err: Error) => Promise<void> | void, graceMs = 10_000, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  let handling = false;
  const handle = (kind: string) => (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    log.fatal({ error: err.message, kind: err.name, stack: err.stack ?? '', source: kind }, `fatal: ${kind} outside the engine; node stops so that the supervisor restarts it`);
    if (handling) return;
    handling = true;
    setTimeout(() => exit(EXIT.FATAL), graceMs);
    Promise.resolve()
      .then(() => stop(err))
      .catch(() => undefined)
      .finally(() => exit(EXIT.FATAL));
  };
  const onException = handle('uncaught exception');
  const onRejection = handle('unhandled promise rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
