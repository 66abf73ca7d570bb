/**
 * Shared pieces of the GPIO backends: polarity and error wording.
 *
 * Polarity, in two steps, each documented where it is configured:
 *   1. `cutWhenActive` (default true): the relay module cuts the target's power when
 *      its input is *active* — the recommended wiring (docs/wiring.md) has the
 *      target's supply through the relay's normally-closed contact, so a released,
 *      pulled-down line (daemon dead, Pi rebooting) leaves the target powered and
 *      only a deliberate drive fences it.
 *   2. `activeLow` (default false): the line is active at 0 V (many opto-isolated
 *      relay boards switch on a low input).
 * So `set(on)`: active = cutWhenActive ? !on : on; level = active XOR activeLow.
 */
import * as fs from 'node:fs';

export interface PolarityOptions {
  /** True (default): an active line opens the NC contact and cuts the target's power. */
  cutWhenActive?: boolean;
  /** True: the line is active low (0 V = active). Default false. */
  activeLow?: boolean;
}

export class Polarity {
  readonly cutWhenActive: boolean;
  readonly activeLow: boolean;
  constructor(o: PolarityOptions = {}, what = 'relay') {
    this.cutWhenActive = o.cutWhenActive ?? true;
    this.activeLow = o.activeLow ?? false;
    if (typeof this.cutWhenActive !== 'boolean') throw new TypeError(`${what}.cutWhenActive: expected a boolean, got ${String(o.cutWhenActive)}`);
    if (typeof this.activeLow !== 'boolean') throw new TypeError(`${what}.activeLow: expected a boolean, got ${String(o.activeLow)}`);
  }
  /** Logical "active" for the relay input when the target should be powered (`on`) or not. */
  activeFor(on: boolean): boolean {
    return this.cutWhenActive ? !on : on;
  }
  levelFor(on: boolean): 0 | 1 {
    return this.activeFor(on) !== this.activeLow ? 1 : 0;
  }
  /** Target powered, given the physical level of the line. */
  onFromLevel(level: 0 | 1): boolean {
    const active = (level === 1) !== this.activeLow;
    return this.cutWhenActive ? !active : active;
  }
}

/** An fs error rewritten to name the path, the action and the likely fix. */
export function fsError(err: unknown, path: string, action: string): Error {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  let hint = '';
  if (code === 'ENOENT') hint = ' (missing: check the overlay / chip label / line number, see docs/wiring.md)';
  else if (code === 'EACCES' || code === 'EPERM') hint = ' (permission denied: add the daemon user to group gpio, or install the udev rule in docs/wiring.md)';
  else if (code === 'EBUSY') hint = ' (busy: another driver or process owns this line)';
  else if (code === 'EINVAL') hint = ' (the kernel rejected the value)';
  const out = new Error(`${action} ${path} failed: ${code || 'error'}${hint}: ${e?.message ?? String(err)}`);
  (out as NodeJS.ErrnoException).code = code || undefined;
  return out;
}

/**
 * Writes a sysfs attribute. O_WRONLY|O_TRUNC without O_CREAT: a missing attribute is
 * ENOENT (named in the error), never silently created (this matters for fake trees).
 */
export function writeFileChecked(path: string, data: string, done: (err: Error | null) => void): void {
  fs.writeFile(path, data, { flag: (fs.constants.O_WRONLY | fs.constants.O_TRUNC) as unknown as string }, (err) => done(err ? fsError(err, path, `writing "${data}" to`) : null));
}

/** Reads a sysfs attribute holding a 0/1 (or any integer; > 0 counts as 1). */
export function readLevel(path: string, done: (err: Error | null, level?: 0 | 1) => void): void {
  fs.readFile(path, 'utf8', (err, text) => {
    if (err) return done(fsError(err, path, 'reading'));
    const t = text.trim();
    if (!/^\d+$/.test(t)) return done(new Error(`reading ${path}: expected an integer, got ${JSON.stringify(t.slice(0, 40))}`));
    done(null, Number(t) > 0 ? 1 : 0);
  });
}

export function checkName(what: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('/') || v === '.' || v === '..') {
    throw new RangeError(`${what}: expected a plain name (no "/"), got ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkLine(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1023) throw new RangeError(`${what}: expected a line offset 0..1023, got ${String(v)}`);
  return v;
}
