/**
 * The gpioset/gpioget backends against fake tools on PATH: the fakes record their
 * argv and (gpioset) stay alive until killed, like the real ones.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpiogetPowerSense, GpiosetRelay, parseGpiodVersion } from '../../../hal/gpio/gpiod.ts';
import { waitFor } from '../serial/socat.ts';

const dirs: string[] = [];
const relays: GpiosetRelay[] = [];
afterEach(() => {
  for (const r of relays.splice(0)) r.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakeTools(version: string): { dir: string; log: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-gpiod-'));
  dirs.push(dir);
  const log = join(dir, 'argv.log');
  writeFileSync(log, '');
  const gpioset = `#!/bin/sh
if [ "$1" = "-v" ]; then echo "gpioset (libgpiod) v${version}"; exit 0; fi
echo "gpioset $*" >> "$FAKE_GPIO_LOG"
if [ -n "$FAKE_GPIOSET_FAIL" ]; then echo "gpioset: unable to request lines on chip: Device or resource busy" >&2; exit 1; fi
exec sleep 600
`;
  const gpioget = `#!/bin/sh
if [ "$1" = "-v" ]; then echo "gpioget (libgpiod) v${version}"; exit 0; fi
echo "gpioget $*" >> "$FAKE_GPIO_LOG"
cat "$FAKE_GPIO_VALUE"
`;
  writeFileSync(join(dir, 'gpioset'), gpioset);
  writeFileSync(join(dir, 'gpioget'), gpioget);
  chmodSync(join(dir, 'gpioset'), 0o755);
  chmodSync(join(dir, 'gpioget'), 0o755);
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, FAKE_GPIO_LOG: log, FAKE_GPIO_VALUE: join(dir, 'value') };
  return { dir, log, env };
}

const lines = (log: string) => readFileSync(log, 'utf8').split('\n').filter((l) => l.length > 0);
const cb = <T>(f: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((res, rej) => f((err, v) => (err ? rej(err) : res(v as T))));

/**
 * The relay counts a set() as done when gpioset is still alive `settleMs` after it
 * started. The fakes are shell scripts: on a loaded machine one can take well over 30 ms
 * to log its argv or to fail, and would then be judged (or killed by the next set) before
 * it did. 300 ms, and 3 s where a test waits for a failing fake, keep the checks about
 * the relay, not about how fast sh starts; a real gpioset fails within milliseconds.
 */
function relay(env: NodeJS.ProcessEnv, extra: Partial<ConstructorParameters<typeof GpiosetRelay>[0]> = {}): GpiosetRelay {
  const r = new GpiosetRelay({ name: 'n2', chip: 'gpiochip0', line: 17, env, settleMs: 300, ...extra });
  relays.push(r);
  return r;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('parseGpiodVersion', () => {
  it('reads the major version from -v output', () => {
    expect(parseGpiodVersion('gpioset (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski')).toBe(1);
    expect(parseGpiodVersion('gpioset (libgpiod) v2.1')).toBe(2);
    expect(parseGpiodVersion('gpioset v3.0')).toBe(null);
    expect(parseGpiodVersion('hello')).toBe(null);
  });
});

describe('GpiosetRelay (fake gpioset on PATH)', () => {
  it('v1: exact argv with --mode=signal, one long-lived child, replaced on change', async () => {
    const t = fakeTools('1.6.3');
    const r = relay(t.env);
    await cb<void>((d) => r.set(false, d)); // fence: active-high line → 1
    const pid1 = r.pid!;
    expect(alive(pid1)).toBe(true);
    expect(lines(t.log)).toEqual(['gpioset --mode=signal gpiochip0 17=1']);
    expect(await cb<boolean>((d) => r.read(d))).toBe(false);
    await cb<void>((d) => r.set(true, d));
    expect(lines(t.log)).toEqual(['gpioset --mode=signal gpiochip0 17=1', 'gpioset --mode=signal gpiochip0 17=0']);
    await waitFor(() => !alive(pid1), 3000, 'the old child to be gone');
    expect(r.pid).not.toBe(pid1);
    expect(await cb<boolean>((d) => r.read(d))).toBe(true);
    expect(r.faults).toBe(0); // replacing the child on purpose is not a fault
  });

  it('v2: exact argv with -c; active-low inverts the level', async () => {
    const t = fakeTools('2.1');
    const r = relay(t.env, { chip: 'gpiochip4', line: 22, activeLow: true });
    await cb<void>((d) => r.set(false, d));
    await cb<void>((d) => r.set(true, d));
    expect(lines(t.log)).toEqual(['gpioset -c gpiochip4 22=0', 'gpioset -c gpiochip4 22=1']);
  });

  it('a killed gpioset is a relay fault: counted, reported, and read() fails until the next set', async () => {
    const t = fakeTools('2.1');
    const faults: Error[] = [];
    const r = relay(t.env, { onFault: (e) => faults.push(e) });
    await cb<void>((d) => r.set(false, d));
    process.kill(r.pid!, 'SIGKILL');
    await waitFor(() => faults.length === 1, 3000, 'fault report');
    expect(faults[0]!.message).toMatch(/relay n2 \(gpioset chip gpiochip0 line 17\): gpioset exited \(signal SIGKILL\).*no longer held/);
    expect(r.faults).toBe(1);
    await expect(cb<boolean>((d) => r.read(d))).rejects.toThrow(/no longer held/);
    await cb<void>((d) => r.set(false, d));
    expect(await cb<boolean>((d) => r.read(d))).toBe(false);
  });

  it('a gpioset that cannot take the line fails set() with its stderr', async () => {
    const t = fakeTools('2.1');
    const r = relay({ ...t.env, FAKE_GPIOSET_FAIL: '1' }, { settleMs: 3000 });
    await expect(cb<void>((d) => r.set(false, d))).rejects.toThrow(/gpioset exited \(code 1\): gpioset: unable to request lines on chip: Device or resource busy/);
    expect(r.faults).toBe(0);
    await expect(cb<boolean>((d) => r.read(d))).rejects.toThrow(/not held/);
  });

  it('a missing gpioset is a clear error naming the command', async () => {
    const r = relay({ ...process.env, PATH: '/nonexistent' }, { command: 'gpioset' });
    await expect(cb<void>((d) => r.set(false, d))).rejects.toThrow(/relay n2 \(gpioset chip gpiochip0 line 17\): gpioset -v: not found/);
    const r2 = relay(process.env, { command: '/nonexistent/gpioset', version: 2 });
    await expect(cb<void>((d) => r2.set(false, d))).rejects.toThrow(/cannot start: not found/);
  });

  it('concurrent set() calls run in order; close() releases the line', async () => {
    const t = fakeTools('2.1');
    const r = relay(t.env);
    const order: number[] = [];
    await Promise.all([
      cb<void>((d) => r.set(false, (e) => (order.push(1), d(e)))),
      cb<void>((d) => r.set(true, (e) => (order.push(2), d(e)))),
      cb<void>((d) => r.set(false, (e) => (order.push(3), d(e)))),
    ]);
    expect(order).toEqual([1, 2, 3]);
    expect(lines(t.log)).toEqual(['gpioset -c gpiochip0 17=1', 'gpioset -c gpiochip0 17=0', 'gpioset -c gpiochip0 17=1']);
    const pid = r.pid!;
    r.close();
    await waitFor(() => !alive(pid), 3000, 'child gone after close');
    expect(r.faults).toBe(0);
  });

  it('rejects bad options by name', () => {
    expect(() => new GpiosetRelay({ name: 'x', chip: '', line: 1 })).toThrow(/chip/);
    expect(() => new GpiosetRelay({ name: 'x', chip: 'gpiochip0', line: -1 })).toThrow(/line/);
    expect(() => new GpiosetRelay({ name: 'x', chip: 'gpiochip0', line: 1, version: 3 as 1 })).toThrow(/version/);
  });
});

describe('GpiogetPowerSense (fake gpioget on PATH)', () => {
  it('v1 and v2 argv, value parsing, live level', async () => {
    for (const [v, argv] of [['1.6.3', 'gpioget gpiochip0 27'], ['2.1', 'gpioget --numeric -c gpiochip0 27']] as const) {
      const t = fakeTools(v);
      writeFileSync(join(t.dir, 'value'), '1\n');
      const s = new GpiogetPowerSense({ name: 'rail', chip: 'gpiochip0', line: 27, env: t.env });
      expect(await cb<boolean>((d) => s.read(d))).toBe(true);
      writeFileSync(join(t.dir, 'value'), '0\n');
      expect(await cb<boolean>((d) => s.read(d))).toBe(false);
      expect(lines(t.log)).toEqual([argv, argv]);
      writeFileSync(join(t.dir, 'value'), '"GPIO27"=active\n');
      await expect(cb<boolean>((d) => s.read(d))).rejects.toThrow(/expected "0" or "1"/);
      expect(existsSync(t.log)).toBe(true);
    }
  });
});
