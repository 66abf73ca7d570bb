/**
 * Leadership hooks, like keepalived's notify scripts: a shell command run when this
 * node becomes the *active* leader (`onActive`) and when it stops being active
 * (`onInactive`). With a `fencing:` config section "active" is the runtime's
 * activation gate (docs/fencing.md: elected, and every earlier leader fenced, acknowledged,
 * confirmed by an operator or past its lease bound, and its own lease holds); the
 * events come from the HTTP backend (EngineBackend, BullyBackend), which follows the runtime's activation observer.
 * Without fencing, active = leader with its term's first entry committed.
 * Environment: QUORUMD_EVENT (active|inactive), QUORUMD_TERM,
 * QUORUMD_TOKEN (the leadership's fencing token: pass it to what you drive and have it
 * refuse older ones, src/fence FencedResource), QUORUMD_NODE (this node's name),
 * QUORUMD_CLUSTER, and QUORUMD_API_URL (this node's HTTP API, for `quorumd` commands).
 *
 * - One hook at a time, in event order: an `inactive` queued behind a running
 *   `active` waits for it (a VIP must not be released before it was added). Events
 *   that arrive while one is queued collapse: only the latest state runs, since
 *   running "active" then "inactive" for a state that is already over does nothing
 *   useful. (keepalived serializes its notify scripts the same way.)
 * - A hook still running after `timeoutMs` gets SIGTERM, then SIGKILL 2 s later, sent
 *   to its whole process group (its children too); the timeout is logged as an error.
 * - stdout and stderr are logged line by line (at most 64 KiB per hook run, then
 *   truncated, so that a chatty script cannot fill the disk). daemon/shell.ts runs
 *   the command, the same way as scheduled jobs.
 */
import { runShell, type ShellLog } from './shell.ts';

export interface HookEvent {
  event: 'active' | 'inactive';
  term: number;
  token: number;
}

export type HookLog = ShellLog;

export interface HookOptions {
  onActive?: string | undefined;
  onInactive?: string | undefined;
  /** Default 10000 ms. */
  timeoutMs?: number;
  node: string;
  cluster: string;
  log: HookLog;
  /** Grace between SIGTERM and SIGKILL on timeout (ms). Default 2000. */
  killGraceMs?: number;
}

export interface HookResult {
  event: HookEvent['event'];
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  ms: number;
}

export class HookRunner {
  private running: Promise<void> | undefined;
  private queued: HookEvent | undefined;
  private readonly timeoutMs: number;
  /** Results of finished hook runs, newest last (at most 50; for status and tests). */
  readonly history: HookResult[] = [];
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  /** How a `quorumd` command in a hook finds the API token (QUORUMD_API_TOKEN_FILE; startNode sets it). */
  apiAuthEnv: Record<string, string> = {};
  /** This node's HTTP API URL for the hooks' environment (QUORUMD_API_URL; startNode sets it once the server listens). */
  apiUrl: string | undefined;

  constructor(private readonly opts: HookOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Queues an event; returns at once. */
  fire(ev: HookEvent): void {
    if (this.stopped) return;
    this.queued = ev;
    if (!this.running) this.next();
  }

  /** Resolves when no hook runs or waits. */
  idle(): Promise<void> {
    if (!this.running && !this.queued) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Runs nothing new; lets a running hook finish (bounded by its timeout). */
  stop(): Promise<void> {
    this.stopped = true;
    this.queued = undefined;
    return this.idle();
  }

  private next(): void {
    const ev = this.queued;
    this.queued = undefined;
    if (!ev) {
      this.running = undefined;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
      return;
    }
    const cmd = ev.event === 'active' ? this.opts.onActive : this.opts.onInactive;
    if (!cmd) return this.next();
    this.running = this.run(cmd, ev).then(() => this.next());
  }

  private async run(cmd: string, ev: HookEvent): Promise<void> {
    const { log } = this.opts;
    const fields = { hook: ev.event, term: ev.term, token: ev.token };
    log.info({ ...fields, cmd }, 'hook start');
    const r = await runShell({
      command: cmd,
      env: {
        QUORUMD_EVENT: ev.event,
        QUORUMD_TERM: String(ev.term),
        QUORUMD_TOKEN: String(ev.token),
        QUORUMD_NODE: this.opts.node,
        QUORUMD_CLUSTER: this.opts.cluster,
        ...(this.apiUrl !== undefined ? { QUORUMD_API_URL: this.apiUrl } : {}),
        ...this.apiAuthEnv,
      },
      timeoutMs: this.timeoutMs,
      ...(this.opts.killGraceMs !== undefined ? { killGraceMs: this.opts.killGraceMs } : {}),
      log,
      fields,
      what: 'hook',
    }).done;
    if (r.code === 0) log.info({ ...fields, ms: r.ms }, 'hook done');
    else if (r.spawnError === undefined) log.error({ ...fields, ms: r.ms, code: r.code, signal: r.signal, timedOut: r.timedOut }, 'hook failed');
    this.record({ event: ev.event, code: r.code, signal: r.signal, timedOut: r.timedOut, ms: r.ms });
  }

  private record(r: HookResult): void {
    this.history.push(r);
    if (this.history.length > 50) this.history.shift();
  }
}
