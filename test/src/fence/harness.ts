/**
 * A small virtual-time world for the pure fencer: relays and power-sense inputs with
 * fault knobs, answering the fencer's commands after a latency. No wall clock.
 */
import { Fencer, type FenceCommand, type FenceCommandResult, type FenceRecord } from '../../../src/fence/fencer.ts';

export interface HwRelay {
  /** Node whose supply this relay actually switches (miswiring: not the configured target). */
  feeds: number;
  /** Relay on = feeding. */
  on: boolean;
  /** Commands never answered. */
  silent?: boolean;
  /** set() answers with an error and changes nothing. */
  failSet?: boolean;
  /** Contact frozen; read-back reports the frozen contact. */
  stuck?: boolean;
}

export class FenceWorld {
  now = 0;
  readonly relays = new Map<string, HwRelay>();
  /** Boards' mains (independent of relays). */
  readonly mains = new Map<number, boolean>();
  /** Sense input name → node it reads. */
  readonly senses = new Map<string, number>();
  readonly silentSenses = new Set<string>();
  readonly log: string[] = [];
  readonly finished: FenceRecord[] = [];
  readonly updates: FenceRecord[] = [];
  private pending: Array<{ at: number; id: number; r: FenceCommandResult }> = [];
  /** Powered-state history per node: [time, powered]. */
  readonly offSince = new Map<number, number | null>();

  constructor(
    readonly fencer: Fencer,
    readonly latencyMs = 10,
  ) {}

  powered(node: number): boolean {
    if (this.mains.get(node) === false) return false;
    for (const r of this.relays.values()) if (r.feeds === node && !r.on) return false;
    return true;
  }

  private exec(c: FenceCommand): void {
    this.log.push(`${this.now} ${c.op} ${c.device}${c.op === 'relay-set' ? (c.on ? ' on' : ' off') : ''}`);
    if (c.op === 'sense-read') {
      const node = this.senses.get(c.device);
      if (node === undefined) return this.answer(c.id, { ok: false, error: `no sense ${c.device}` });
      if (this.silentSenses.has(c.device)) return;
      return this.answer(c.id, { ok: true, value: this.powered(node) });
    }
    const r = this.relays.get(c.device);
    if (r === undefined) return this.answer(c.id, { ok: false, error: `no relay ${c.device}` });
    if (r.silent) return;
    if (c.op === 'relay-read') return this.answer(c.id, { ok: true, value: r.on });
    if (r.failSet) return this.answer(c.id, { ok: false, error: 'GPIO write error' });
    if (!r.stuck) r.on = c.on;
    this.answer(c.id, { ok: true });
  }

  private answer(id: number, r: FenceCommandResult): void {
    this.pending.push({ at: this.now + this.latencyMs, id, r });
  }

  private drain(): void {
    const out = this.fencer.take();
    for (const rec of out.records) {
      this.updates.push(rec);
      if (rec.outcome !== 'pending' && !this.finished.some((f) => f.id === rec.id)) this.finished.push(rec);
    }
    for (const c of out.commands) this.exec(c);
  }

  /** Runs until nothing is left to do or `untilMs`. Bounded in steps. */
  run(untilMs: number): void {
    this.drain();
    for (let i = 0; i < 100_000; i++) {
      const d = this.fencer.nextDeadline();
      const p = this.pending.length > 0 ? Math.min(...this.pending.map((x) => x.at)) : null;
      const next = [d, p].filter((x): x is number => x !== null).reduce((a, b) => Math.min(a, b), Infinity);
      if (next === Infinity || next > untilMs) {
        this.now = Math.max(this.now, Math.min(untilMs, Number.MAX_SAFE_INTEGER));
        return;
      }
      this.now = Math.max(this.now, next);
      const due = this.pending.filter((x) => x.at <= this.now);
      this.pending = this.pending.filter((x) => x.at > this.now);
      for (const x of due) this.fencer.result(x.id, this.now, x.r);
      this.fencer.tick(this.now);
      this.drain();
    }
    throw new Error('FenceWorld.run: step bound exceeded');
  }
}
