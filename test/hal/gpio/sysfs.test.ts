/**
 * LED-class and legacy sysfs GPIO backends against a temporary fake /sys tree: the
 * tests assert the exact bytes in the attribute files.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LedRelay, SysfsPowerSense, SysfsRelay, sysfsGpioNumber } from '../../../hal/gpio/sysfs.ts';
import { fsError, Polarity } from '../../../hal/gpio/common.ts';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function fakeSys(): string {
  const root = mkdtempSync(join(tmpdir(), 'quorumd-sys-'));
  roots.push(root);
  return root;
}
function put(root: string, rel: string, content: string): string {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}
const cb = <T>(f: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((res, rej) => f((err, v) => (err ? rej(err) : res(v as T))));

/** A Pi 5-like tree: the RP1 chip at base 571, plus another chip. */
function pi5(root: string): void {
  put(root, 'class/gpio/gpiochip512/label', 'gpio-brcmstb@107d508500\n');
  put(root, 'class/gpio/gpiochip512/base', '512\n');
  put(root, 'class/gpio/gpiochip512/ngpio', '32\n');
  put(root, 'class/gpio/gpiochip571/label', 'pinctrl-rp1\n');
  put(root, 'class/gpio/gpiochip571/base', '571\n');
  put(root, 'class/gpio/gpiochip571/ngpio', '54\n');
  put(root, 'class/gpio/export', '');
}

describe('Polarity', () => {
  it('maps on/off through cutWhenActive and activeLow, and back', () => {
    const cases: Array<[boolean, boolean, boolean, 0 | 1]> = [
      // cutWhenActive, activeLow, on, level
      [true, false, true, 0], [true, false, false, 1],
      [true, true, true, 1], [true, true, false, 0],
      [false, false, true, 1], [false, false, false, 0],
      [false, true, true, 0], [false, true, false, 1],
    ];
    for (const [cutWhenActive, activeLow, on, level] of cases) {
      const p = new Polarity({ cutWhenActive, activeLow });
      expect(p.levelFor(on)).toBe(level);
      expect(p.onFromLevel(level)).toBe(on);
    }
  });
  it('names the cause and the fix of fs errors', () => {
    const e = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    expect(fsError(e, '/sys/x/value', 'writing "1" to').message).toMatch(/writing "1" to \/sys\/x\/value failed: EACCES \(permission denied: add the daemon user to group gpio/);
  });
});

describe('LedRelay (kernel LED class)', () => {
  it('writes the exact brightness value and reads it back', async () => {
    const root = fakeSys();
    const file = put(root, 'class/leds/fence-n2/brightness', '0\n');
    const r = new LedRelay({ name: 'n2', led: 'fence-n2', root });
    await cb<void>((d) => r.set(false, d)); // fence: active → 1
    expect(readFileSync(file, 'utf8')).toBe('1');
    expect(await cb<boolean>((d) => r.read(d))).toBe(false);
    await cb<void>((d) => r.set(true, d));
    expect(readFileSync(file, 'utf8')).toBe('0');
    expect(await cb<boolean>((d) => r.read(d))).toBe(true);
    // The kernel reports max brightness (255) for an active gpio-led: still "active".
    writeFileSync(file, '255\n');
    expect(await cb<boolean>((d) => r.read(d))).toBe(false);
  });
  it('active-low inverts the written value', async () => {
    const root = fakeSys();
    const file = put(root, 'class/leds/k/brightness', '0\n');
    const r = new LedRelay({ name: 'n3', led: 'k', root, activeLow: true });
    await cb<void>((d) => r.set(false, d));
    expect(readFileSync(file, 'utf8')).toBe('0');
    await cb<void>((d) => r.set(true, d));
    expect(readFileSync(file, 'utf8')).toBe('1');
  });
  it('a missing LED is a clear error naming the path, and nothing is created', async () => {
    const root = fakeSys();
    const r = new LedRelay({ name: 'n2', led: 'nope', root });
    const p = join(root, 'class/leds/nope/brightness');
    await expect(cb<void>((d) => r.set(false, d))).rejects.toThrow(new RegExp(`${p} failed: ENOENT \\(missing`));
    await expect(cb<boolean>((d) => r.read(d))).rejects.toThrow(/ENOENT/);
  });
  it('garbage in the attribute is an error, not a state', async () => {
    const root = fakeSys();
    put(root, 'class/leds/k/brightness', 'on\n');
    const r = new LedRelay({ name: 'n2', led: 'k', root });
    await expect(cb<boolean>((d) => r.read(d))).rejects.toThrow(/expected an integer, got "on"/);
  });
  it.skipIf(process.getuid?.() === 0)('a permission error names the path and the fix', async () => {
    const root = fakeSys();
    const file = put(root, 'class/leds/k/brightness', '0\n');
    chmodSync(file, 0o444);
    const r = new LedRelay({ name: 'n2', led: 'k', root });
    await expect(cb<void>((d) => r.set(false, d))).rejects.toThrow(/EACCES \(permission denied/);
  });
  it('rejects bad options by name', () => {
    expect(() => new LedRelay({ name: 'a', led: '../x' })).toThrow(/led: expected a plain name/);
    expect(() => new LedRelay({ name: '', led: 'x' })).toThrow(/relay\.name/);
    expect(() => new LedRelay({ name: 'a', led: 'x', activeLow: 'yes' as unknown as boolean })).toThrow(/activeLow/);
  });
});

describe('sysfs GPIO', () => {
  it('finds the chip base by label (Pi 5: 571 + 17 = 588) and names what it found otherwise', () => {
    const root = fakeSys();
    pi5(root);
    expect(sysfsGpioNumber({ chipLabel: 'pinctrl-rp1', line: 17, root })).toBe(588);
    expect(() => sysfsGpioNumber({ chipLabel: 'pinctrl-bcm2711', line: 17, root })).toThrow(/no GPIO chip labelled "pinctrl-bcm2711".*gpiochip571="pinctrl-rp1"/);
    expect(() => sysfsGpioNumber({ chipLabel: 'pinctrl-rp1', line: 54, root })).toThrow(/has only 54 lines/);
    expect(() => sysfsGpioNumber({ chipLabel: 'pinctrl-rp1', line: 17, root: join(root, 'nope') })).toThrow(/ENOENT/);
  });

  it('exports, sets direction with the initial level, then writes values; reads back', async () => {
    const root = fakeSys();
    pi5(root);
    const r = new SysfsRelay({ name: 'n2', chipLabel: 'pinctrl-rp1', line: 17, root });
    expect(r.number).toBe(588);
    // The fake kernel: the gpio588 directory exists only after export (pre-created
    // here, so we check the export write separately below).
    put(root, 'class/gpio/gpio588/direction', 'in\n');
    put(root, 'class/gpio/gpio588/value', '0\n');
    await cb<void>((d) => r.set(false, d));
    expect(readFileSync(join(root, 'class/gpio/gpio588/direction'), 'utf8')).toBe('high');
    expect(readFileSync(join(root, 'class/gpio/export'), 'utf8')).toBe(''); // already exported
    writeFileSync(join(root, 'class/gpio/gpio588/value'), '1\n'); // what the kernel would show
    expect(await cb<boolean>((d) => r.read(d))).toBe(false);
    await cb<void>((d) => r.set(true, d));
    expect(readFileSync(join(root, 'class/gpio/gpio588/value'), 'utf8')).toBe('0');
    expect(await cb<boolean>((d) => r.read(d))).toBe(true);
  });

  it('writes the global number to export when the line is not exported, and says so if it does not appear', async () => {
    const root = fakeSys();
    pi5(root);
    const r = new SysfsRelay({ name: 'n2', chipLabel: 'pinctrl-rp1', line: 4, root, activeLow: true });
    await expect(cb<void>((d) => r.set(true, d))).rejects.toThrow(/exported GPIO 575 but .*gpio575 did not appear/);
    expect(readFileSync(join(root, 'class/gpio/export'), 'utf8')).toBe('575');
  });

  it('power sense: direction "in", live level configurable', async () => {
    const root = fakeSys();
    pi5(root);
    put(root, 'class/gpio/gpio593/direction', 'out\n');
    const value = put(root, 'class/gpio/gpio593/value', '1\n');
    const s = new SysfsPowerSense({ name: 'n2-rail', chipLabel: 'pinctrl-rp1', line: 22, root });
    expect(await cb<boolean>((d) => s.read(d))).toBe(true);
    expect(readFileSync(join(root, 'class/gpio/gpio593/direction'), 'utf8')).toBe('in');
    writeFileSync(value, '0\n');
    expect(await cb<boolean>((d) => s.read(d))).toBe(false);
    const low = new SysfsPowerSense({ name: 'n2-rail', chipLabel: 'pinctrl-rp1', line: 22, root, liveLevel: 0 });
    expect(await cb<boolean>((d) => low.read(d))).toBe(true);
    rmSync(value);
    await expect(cb<boolean>((d) => s.read(d))).rejects.toThrow(/reading .*gpio593\/value failed: ENOENT/);
  });
});
