/**
 * The /dev/watchdog backend against a regular file standing in for the device:
 * the bytes written are the protocol (keepalive "\n", magic close "V").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevWatchdog } from '../../hal/watchdog.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fakeDevice(): string {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-wdt-'));
  dirs.push(dir);
  const p = join(dir, 'watchdog');
  writeFileSync(p, '');
  return p;
}

describe('DevWatchdog', () => {
  it('writes one keepalive byte per feed and "V" on disarm, then stops', () => {
    const path = fakeDevice();
    const errors: Error[] = [];
    const w = new DevWatchdog({ path, timeoutMs: 15000, onError: (e) => errors.push(e) });
    expect(w.armed).toBe(true);
    expect(w.timeoutMs).toBe(15000);
    expect(w.recommendedFeedMs).toBe(5000);
    expect(readFileSync(path, 'utf8')).toBe(''); // opening arms; nothing written yet
    w.feed();
    w.feed();
    w.feed();
    expect(readFileSync(path, 'latin1')).toBe('\n\n\n');
    expect(readFileSync(path, 'latin1')).not.toContain('V');
    w.disarm();
    expect(readFileSync(path, 'latin1')).toBe('\n\n\nV');
    expect(w.armed).toBe(false);
    w.disarm(); // idempotent: no second V
    w.feed(); // after disarm: reported, nothing written
    expect(readFileSync(path, 'latin1')).toBe('\n\n\nV');
    expect(errors.map((e) => e.message)).toEqual([`watchdog ${path}: feed() after disarm()`]);
    expect(w.stats.feeds).toBe(3);
  });

  it('a missing device is a clear error with the fix, and no file is created', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-wdt-'));
    dirs.push(dir);
    const p = join(dir, 'watchdog');
    expect(() => new DevWatchdog({ path: p, timeoutMs: 15000 })).toThrow(new RegExp(`cannot open ${p}: ENOENT \\(no watchdog driver: add dtparam=watchdog=on`));
    expect(existsSync(p)).toBe(false);
  });

  it('the timeout must come from config, in range', () => {
    const path = fakeDevice();
    expect(() => new DevWatchdog({ path, timeoutMs: 999 })).toThrow(/watchdog\.timeoutMs: expected an integer 1000\.\.600000/);
    expect(() => new DevWatchdog({ path } as never)).toThrow(/timeoutMs/);
    expect(() => new DevWatchdog({ path: '', timeoutMs: 5000 })).toThrow(/watchdog\.path/);
  });

  it.skipIf(!existsSync('/dev/full'))('a failing keepalive (/dev/full: ENOSPC) is counted and reported, never thrown', () => {
    const path = fakeDevice();
    const errors: Error[] = [];
    const w = new DevWatchdog({ path: '/dev/full', timeoutMs: 5000, onError: (e) => errors.push(e) });
    w.feed();
    expect(w.stats.feedErrors).toBe(1);
    expect(errors[0]!.message).toMatch(/watchdog \/dev\/full: keepalive write failed: .*ENOSPC/);
    expect(existsSync(path)).toBe(true);
  });
});
