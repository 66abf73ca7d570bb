/**
 * daemon/config/regular-file.ts: every config, secret and PEM file the daemon reads goes
 * through readRegularFile. Only regular files, never past the limit, and a buffer sized
 * to the file (not to the limit).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileReadError, readRegularFile } from '../../../daemon/config/regular-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'qregular-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refused(path: string, max: number): FileReadError {
  try {
    readRegularFile(path, max);
  } catch (e) {
    expect(e).toBeInstanceOf(FileReadError);
    return e as FileReadError;
  }
  throw new Error(`expected ${path} to be refused`);
}

describe('readRegularFile', () => {
  it('a small file: its bytes, in a buffer the size of the file, not of the limit', () => {
    const f = join(dir, 'key');
    writeFileSync(f, 'ab'.repeat(32));
    const b = readRegularFile(f, 1 << 20);
    expect(b.toString()).toBe('ab'.repeat(32));
    expect(b.buffer.byteLength).toBeLessThanOrEqual(65); // was the limit + 1: a zeroed MiB per file
  });

  it('exactly the limit is read; one byte more is refused as too large', () => {
    const f = join(dir, 'edge');
    writeFileSync(f, Buffer.alloc(1000, 7));
    expect(readRegularFile(f, 1000).length).toBe(1000);
    const e = refused(f, 999);
    expect(e.reason).toBe('too-large');
    expect(e.message).toBe('expected at most 999 bytes, got 1000');
  });

  it('a file longer than its stat says (procfs: size 0) is read whole, and still refused past the limit', () => {
    const f = '/proc/self/cmdline';
    expect(statSync(f).size).toBe(0);
    const whole = readFileSync(f);
    expect(whole.length).toBeGreaterThan(10);
    expect(readRegularFile(f, 1 << 20).equals(whole)).toBe(true);
    const e = refused(f, 5);
    expect(e.reason).toBe('too-large');
    expect(e.message).toBe('expected at most 5 bytes, got more');
  });

  it('a named pipe, a directory and a character device are refused at once; a missing file is an io error', () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(refused(fifo, 100)).toMatchObject({ reason: 'not-regular', message: 'expected a regular file, got a named pipe (FIFO)' });
    expect(refused(dir, 100)).toMatchObject({ reason: 'not-regular', message: 'expected a regular file, got a directory' });
    expect(refused('/dev/zero', 100)).toMatchObject({ reason: 'not-regular', message: 'expected a regular file, got a character device' });
    const missing = refused(join(dir, 'nothere'), 100);
    expect(missing.reason).toBe('io');
    expect(missing.message).toMatch(/ENOENT/);
  });
});
