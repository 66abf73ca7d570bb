/**
 * Relay and power-sense backends on sysfs files.
 *
 * (a) LED class — the recommended wiring: `dtoverlay=gpio-led,gpio=17,label=fence-n2`
 *     in config.txt makes the kernel own the pin from boot (so it is never left
 *     floating) and exposes `/sys/class/leds/fence-n2/brightness`; 0 = inactive, any
 *     positive value = active. The overlay's own `active_low` may also be used; then
 *     leave `activeLow` false here (do not invert twice).
 * (c) legacy sysfs GPIO (`/sys/class/gpio`, deprecated but present on Raspberry Pi OS):
 *     the global number of a line is `base + offset`, where `base` belongs to the chip
 *     whose `/sys/class/gpio/gpiochipN/label` matches (e.g. "pinctrl-rp1" on a Pi 5,
 *     base 571; "pinctrl-bcm2711" on a Pi 4, base 512 on kernel 6.6+ — older kernels
 *     used 0). Never hard-code 17: look the base up. The line is exported if
 *     `gpioN/` does not exist, and set as an output with its initial level in one
 *     write ("low"/"high" to `direction`, glitch-free per the kernel's sysfs GPIO ABI).
 *
 * Every backend takes `root` (default "/sys") so that tests run against a fake tree.
 * Errors name the file, the action and the likely fix (common.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Done, DoneWith, PowerSense, Relay } from '../interfaces.ts';
import { checkLine, checkName, fsError, Polarity, readLevel, writeFileChecked, type PolarityOptions } from './common.ts';

export interface LedRelayOptions extends PolarityOptions {
  /** Relay name in status and logs. */
  name: string;
  /** LED class device name (the overlay's `label`), e.g. "fence-n2". */
  led: string;
  /** sysfs mount point. Default "/sys"; tests point it at a temporary tree. */
  root?: string;
}

/** (a) A relay driven through the kernel LED class. */
export class LedRelay implements Relay {
  readonly name: string;
  readonly path: string;
  private readonly pol: Polarity;

  constructor(o: LedRelayOptions) {
    this.name = checkName('relay.name', o?.name);
    const led = checkName(`relay ${o.name}: led`, o.led);
    this.pol = new Polarity(o, `relay ${o.name}`);
    this.path = path.join(o.root ?? '/sys', 'class', 'leds', led, 'brightness');
  }

  set(on: boolean, done: Done): void {
    if (typeof on !== 'boolean') return done(new TypeError(`relay ${this.name}: set(on) expects a boolean, got ${typeof on}`));
    writeFileChecked(this.path, String(this.pol.levelFor(on)), done);
  }

  read(done: DoneWith<boolean>): void {
    readLevel(this.path, (err, level) => (err ? done(err) : done(null, this.pol.onFromLevel(level!))));
  }
}

export interface SysfsLineOptions {
  /** Chip label as in /sys/class/gpio/gpiochipN/label, e.g. "pinctrl-rp1" (Pi 5), "pinctrl-bcm2711" (Pi 4). */
  chipLabel: string;
  /** Line offset within the chip (BCM GPIO number on a Pi: GPIO17 → 17). */
  line: number;
  /** sysfs mount point. Default "/sys". */
  root?: string;
}

/** Finds the global sysfs number of `line` on the chip labelled `chipLabel`. Synchronous: start-up only. */
export function sysfsGpioNumber(o: SysfsLineOptions): number {
  const label = o.chipLabel;
  if (typeof label !== 'string' || label.length === 0) throw new RangeError(`gpio.chipLabel: expected a chip label such as "pinctrl-rp1", got ${JSON.stringify(label)}`);
  const line = checkLine('gpio.line', o.line);
  const dir = path.join(o.root ?? '/sys', 'class', 'gpio');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith('gpiochip'));
  } catch (e) {
    throw fsError(e, dir, 'listing');
  }
  const seen: string[] = [];
  for (const n of names.sort()) {
    const chip = path.join(dir, n);
    let l: string;
    let base: string;
    let ngpio: string;
    try {
      l = fs.readFileSync(path.join(chip, 'label'), 'utf8').trim();
      base = fs.readFileSync(path.join(chip, 'base'), 'utf8').trim();
      ngpio = fs.readFileSync(path.join(chip, 'ngpio'), 'utf8').trim();
    } catch (e) {
      throw fsError(e, chip, 'reading label/base/ngpio of');
    }
    seen.push(`${n}="${l}"`);
    if (l !== label) continue;
    if (!/^\d+$/.test(base) || !/^\d+$/.test(ngpio)) throw new Error(`${chip}: base/ngpio are not integers (${JSON.stringify(base)}, ${JSON.stringify(ngpio)})`);
    if (line >= Number(ngpio)) throw new RangeError(`gpio.line ${line}: chip "${label}" (${chip}) has only ${ngpio} lines`);
    return Number(base) + line;
  }
  throw new Error(`no GPIO chip labelled "${label}" under ${dir} (found: ${seen.join(', ') || 'none'})`);
}

/** Exports `n` if needed; returns the line directory. */
function exportLine(root: string, n: number, done: DoneWith<string>): void {
  const gpioDir = path.join(root, 'class', 'gpio', `gpio${n}`);
  if (fs.existsSync(gpioDir)) return done(null, gpioDir);
  writeFileChecked(path.join(root, 'class', 'gpio', 'export'), String(n), (err) => {
    if (err) return done(err);
    if (!fs.existsSync(gpioDir)) return done(new Error(`exported GPIO ${n} but ${gpioDir} did not appear`));
    done(null, gpioDir);
  });
}

export interface SysfsRelayOptions extends SysfsLineOptions, PolarityOptions {
  name: string;
}

/** (c) A relay on a legacy sysfs GPIO line. */
export class SysfsRelay implements Relay {
  readonly name: string;
  /** Global sysfs GPIO number (base + offset). */
  readonly number: number;
  private readonly root: string;
  private readonly pol: Polarity;
  private dir: string | null = null;

  constructor(o: SysfsRelayOptions) {
    this.name = checkName('relay.name', o?.name);
    this.pol = new Polarity(o, `relay ${o.name}`);
    this.root = o.root ?? '/sys';
    this.number = sysfsGpioNumber(o);
  }

  set(on: boolean, done: Done): void {
    if (typeof on !== 'boolean') return done(new TypeError(`relay ${this.name}: set(on) expects a boolean, got ${typeof on}`));
    const level = this.pol.levelFor(on);
    if (this.dir !== null) return writeFileChecked(path.join(this.dir, 'value'), String(level), done);
    exportLine(this.root, this.number, (err, dir) => {
      if (err) return done(err);
      // "high"/"low" makes it an output with that initial level, without a glitch.
      writeFileChecked(path.join(dir!, 'direction'), level ? 'high' : 'low', (e2) => {
        if (e2) return done(e2);
        this.dir = dir!;
        done(null);
      });
    });
  }

  read(done: DoneWith<boolean>): void {
    const dir = this.dir ?? path.join(this.root, 'class', 'gpio', `gpio${this.number}`);
    readLevel(path.join(dir, 'value'), (err, level) => (err ? done(err) : done(null, this.pol.onFromLevel(level!))));
  }
}

export interface SysfsPowerSenseOptions extends SysfsLineOptions {
  name: string;
  /** Level at which the target's rail is live. Default 1 (e.g. through an opto-coupler pulling high). */
  liveLevel?: 0 | 1;
}

/** A power-sense input on a legacy sysfs GPIO line (exported and set to "in" on first read). */
export class SysfsPowerSense implements PowerSense {
  readonly name: string;
  readonly number: number;
  private readonly root: string;
  private readonly liveLevel: 0 | 1;
  private dir: string | null = null;

  constructor(o: SysfsPowerSenseOptions) {
    this.name = checkName('powerSense.name', o?.name);
    this.root = o.root ?? '/sys';
    this.liveLevel = o.liveLevel ?? 1;
    if (this.liveLevel !== 0 && this.liveLevel !== 1) throw new RangeError(`powerSense ${o.name}: liveLevel must be 0 or 1, got ${String(o.liveLevel)}`);
    this.number = sysfsGpioNumber(o);
  }

  read(done: DoneWith<boolean>): void {
    const finish = (dir: string) =>
      readLevel(path.join(dir, 'value'), (err, level) => (err ? done(err) : done(null, level === this.liveLevel)));
    if (this.dir !== null) return finish(this.dir);
    exportLine(this.root, this.number, (err, dir) => {
      if (err) return done(err);
      writeFileChecked(path.join(dir!, 'direction'), 'in', (e2) => {
        if (e2) return done(e2);
        this.dir = dir!;
        finish(dir!);
      });
    });
  }
}
