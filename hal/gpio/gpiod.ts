/**
 * (b) Relay and power sense through libgpiod's command-line tools, for kernels
 * without sysfs GPIO and boards where an overlay is not wanted.
 *
 * A line requested through the GPIO character device is held only while the
 * requesting process lives: "the state of a GPIO line controlled over the character
 * device reverts to default when the last process referencing the file descriptor
 * ... exits" (gpioset(1), libgpiod v1.6.3). So the relay runs `gpioset` as a
 * long-lived child that holds the line; changing the level replaces the child (the
 * line is released for a moment: the pull-down of docs/wiring.md keeps that moment
 * safe). The child's unexpected exit is a relay fault: counted, kept in `fault`,
 * reported by read() and to `onFault`, until the next successful set().
 *
 * Syntax, from the man pages (manpages.debian.org / manpages.ubuntu.com gpioset.1):
 *   v1 (libgpiod 1.x): gpioset [OPTIONS] <chip name/number> <offset>=<value>
 *       `--mode=signal`: "set values and wait for SIGINT or SIGTERM".
 *   v2 (libgpiod 2.x): gpioset [OPTIONS] <line=value>...; `-c, --chip <chip>`; the
 *       process holds the values until it exits (no mode option needed).
 *   gpioget v1: gpioget <chip> <offset>              → prints "0" or "1"
 *   gpioget v2: gpioget --numeric -c <chip> <offset> → prints "0" or "1"
 * The version comes from `gpioset -v` ("gpioset (libgpiod) v1.6.3" / "... v2.1").
 * We pass physical levels and do the active-low inversion ourselves (common.ts), so
 * the argv is the same whatever the polarity.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { Cancel, Clock, Done, DoneWith, PowerSense, Relay } from '../interfaces.ts';
import { systemClock } from '../clock.ts';
import { checkLine, checkName, Polarity, type PolarityOptions } from './common.ts';

export type GpiodVersion = 1 | 2;

export interface GpiodToolOptions {
  /** Chip name or number as the tools take it: "gpiochip0", "0", or a label such as "pinctrl-rp1" (v2). */
  chip: string;
  /** Line offset on the chip (BCM GPIO number on a Pi's main chip). */
  line: number;
  /** Command to run: a name looked up on PATH or an absolute path. Default "gpioset" / "gpioget". */
  command?: string;
  /** Environment for the child (e.g. a PATH with a test's fake tool first). Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Tool syntax; default: detected once from `<command> -v`. */
  version?: GpiodVersion;
  /** Time source for the settle delay. Default: the system clock. */
  clock?: Clock;
  /**
   * How long a new gpioset must stay alive before set() reports success. A gpioset
   * that cannot request the line (busy, no such chip, permission) exits within a few
   * ms; 50 ms (default) catches that without slowing a fence noticeably.
   */
  settleMs?: number;
}

/** Parses "gpioset (libgpiod) v1.6.3" → 1. */
export function parseGpiodVersion(text: string): GpiodVersion | null {
  const m = /\bv(\d+)\.\d+/.exec(text);
  if (!m) return null;
  const major = Number(m[1]);
  return major === 1 || major === 2 ? major : null;
}

export function detectGpiodVersion(command: string, env: NodeJS.ProcessEnv | undefined, done: DoneWith<GpiodVersion>): void {
  execFile(command, ['-v'], { env, timeout: 5000 }, (err, stdout, stderr) => {
    if (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'not found (install the gpiod package, or set the command path)' : e.message;
      return done(new Error(`${command} -v: ${why}`));
    }
    const v = parseGpiodVersion(`${stdout}\n${stderr}`);
    if (v === null) return done(new Error(`${command} -v: cannot tell the libgpiod version from ${JSON.stringify(String(stdout).slice(0, 80))}`));
    done(null, v);
  });
}

export function gpiosetArgs(version: GpiodVersion, chip: string, line: number, level: 0 | 1): string[] {
  return version === 1 ? ['--mode=signal', chip, `${line}=${level}`] : ['-c', chip, `${line}=${level}`];
}

export function gpiogetArgs(version: GpiodVersion, chip: string, line: number): string[] {
  return version === 1 ? [chip, String(line)] : ['--numeric', '-c', chip, String(line)];
}

function checkTool(o: GpiodToolOptions, what: string): void {
  if (typeof o.chip !== 'string' || o.chip.length === 0) throw new RangeError(`${what}.chip: expected a chip name or number such as "gpiochip0", got ${JSON.stringify(o.chip)}`);
  checkLine(`${what}.line`, o.line);
  if (o.version !== undefined && o.version !== 1 && o.version !== 2) throw new RangeError(`${what}.version: expected 1 or 2, got ${String(o.version)}`);
}

export interface GpiosetRelayOptions extends GpiodToolOptions, PolarityOptions {
  name: string;
  /** Called when the gpioset child dies without being asked to. */
  onFault?: (err: Error) => void;
}

/** (b) A relay held by a long-lived `gpioset` child. */
export class GpiosetRelay implements Relay {
  readonly name: string;
  readonly command: string;
  private readonly o: GpiosetRelayOptions;
  private readonly pol: Polarity;
  private readonly clock: Clock;
  private readonly settleMs: number;
  private version: GpiodVersion | null;
  private child: ChildProcess | null = null;
  private level: 0 | 1 | null = null;
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  /** The current fault (a dead child), cleared by the next successful set(). */
  fault: Error | null = null;
  faults = 0;

  constructor(o: GpiosetRelayOptions) {
    this.name = checkName('relay.name', o?.name);
    checkTool(o, `relay ${o.name}`);
    this.o = o;
    this.pol = new Polarity(o, `relay ${o.name}`);
    this.command = o.command ?? 'gpioset';
    this.clock = o.clock ?? systemClock({ unref: true });
    this.settleMs = o.settleMs ?? 50;
    if (!(this.settleMs >= 0)) throw new RangeError(`relay ${o.name}: settleMs must be >= 0, got ${String(o.settleMs)}`);
    this.version = o.version ?? null;
  }

  /** PID of the child holding the line (tests, diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private what(): string {
    return `relay ${this.name} (${this.command} chip ${this.o.chip} line ${this.o.line})`;
  }

  set(on: boolean, done: Done): void {
    if (typeof on !== 'boolean') return done(new TypeError(`relay ${this.name}: set(on) expects a boolean, got ${typeof on}`));
    // One change at a time, in call order.
    const run = () => this.doSet(this.pol.levelFor(on), (err) => {
      this.busy = false;
      this.waiting.shift()?.();
      done(err);
    });
    if (this.busy) this.waiting.push(run);
    else {
      this.busy = true;
      run();
    }
  }

  private doSet(level: 0 | 1, done: Done): void {
    if (this.closed) return done(new Error(`${this.what()}: closed`));
    if (this.version === null) {
      detectGpiodVersion(this.command, this.o.env, (err, v) => {
        if (err) return done(new Error(`${this.what()}: ${err.message}`));
        this.version = v!;
        this.doSet(level, done);
      });
      return;
    }
    this.stopChild();
    const args = gpiosetArgs(this.version, this.o.chip, this.o.line, level);
    let child: ChildProcess;
    try {
      child = spawn(this.command, args, { env: this.o.env, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      return done(new Error(`${this.what()}: cannot start: ${(e as Error).message}`));
    }
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 2000) stderr += b.toString();
    });
    let settled = false;
    let settle: Cancel | null = null;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      settle?.();
      if (err === null) {
        this.level = level;
        this.fault = null;
      }
      done(err);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (this.child === child) this.child = null;
      const why = e.code === 'ENOENT' ? 'not found (install the gpiod package, or set the command path)' : e.message;
      finish(new Error(`${this.what()}: cannot start: ${why}`));
    });
    child.once('exit', (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`;
      const err = new Error(`${this.what()}: gpioset exited (${how})${stderr ? `: ${stderr.trim()}` : ''}; the line is no longer held`);
      if (this.child !== child) return; // replaced or stopped on purpose
      this.child = null;
      this.level = null;
      if (!settled) return finish(err);
      this.faults++;
      this.fault = err;
      try {
        this.o.onFault?.(err);
      } catch {
        /* a faulty fault handler must not take the daemon down */
      }
    });
    child.once('spawn', () => {
      settle = this.clock.setTimer(this.settleMs, () => {
        if (this.child === child) finish(null);
      });
    });
  }

  read(done: DoneWith<boolean>): void {
    if (this.fault) return done(this.fault);
    if (this.level === null || this.child === null) return done(new Error(`${this.what()}: line not held (no successful set() yet)`));
    // The driver's view: the level our live child holds.
    done(null, this.pol.onFromLevel(this.level));
  }

  /** Releases the line (kills the child). The pull-down then decides the level. */
  close(): void {
    this.closed = true;
    this.stopChild();
  }

  private stopChild(): void {
    const c = this.child;
    this.child = null;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }
}

export interface GpiogetPowerSenseOptions extends GpiodToolOptions {
  name: string;
  /** Level at which the target's rail is live. Default 1. */
  liveLevel?: 0 | 1;
}

/** A power-sense input read with `gpioget` (one short-lived child per read). */
export class GpiogetPowerSense implements PowerSense {
  readonly name: string;
  readonly command: string;
  private version: GpiodVersion | null;
  private readonly liveLevel: 0 | 1;

  constructor(private readonly o: GpiogetPowerSenseOptions) {
    this.name = checkName('powerSense.name', o?.name);
    checkTool(o, `powerSense ${o.name}`);
    this.command = o.command ?? 'gpioget';
    this.version = o.version ?? null;
    this.liveLevel = o.liveLevel ?? 1;
    if (this.liveLevel !== 0 && this.liveLevel !== 1) throw new RangeError(`powerSense ${o.name}: liveLevel must be 0 or 1, got ${String(o.liveLevel)}`);
  }

  read(done: DoneWith<boolean>): void {
    const what = `powerSense ${this.name} (${this.command} chip ${this.o.chip} line ${this.o.line})`;
    if (this.version === null) {
      detectGpiodVersion(this.command, this.o.env, (err, v) => {
        if (err) return done(new Error(`${what}: ${err.message}`));
        this.version = v!;
        this.read(done);
      });
      return;
    }
    execFile(this.command, gpiogetArgs(this.version, this.o.chip, this.o.line), { env: this.o.env, timeout: 5000 }, (err, stdout, stderr) => {
      if (err) return done(new Error(`${what}: failed: ${String(stderr).trim() || err.message}`));
      const t = String(stdout).trim();
      if (t !== '0' && t !== '1') return done(new Error(`${what}: expected "0" or "1", got ${JSON.stringify(t.slice(0, 40))}`));
      done(null, Number(t) === this.liveLevel);
    });
  }
}
