/**
 * A node's log (daemon/log.ts): one JSON object per line in pino's format, the node's
 * name under `node` exactly once, and a log call that never throws.
 */
import { spawnTied } from '../helpers/tied.ts';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { buildSync } from 'esbuild';
import { createNodeLog, runtimeLogger, type LevelName, type NodeLog } from '../../daemon/log.ts';

function capture(level: LevelName = 'debug') {
  const lines: string[] = [];
  const log = createNodeLog(level, { node: 'n2', cluster: 'dev' }, (s) => void lines.push(s));
  return { lines, log, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createNodeLog', () => {
  it("writes pino's line: level number, ISO time, the node's fields, the line's fields, msg", () => {
    const { lines, log } = capture();
    log.info({ peer: 3, link: 'mqtt' }, 'peer gone');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\{"level":30,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","node":"n2","cluster":"dev","peer":3,"link":"mqtt","msg":"peer gone"\}\n$/);
  });

  it('numbers the levels as pino does and leaves out those below the configured one', () => {
    const { log, parsed } = capture('warn');
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    expect(parsed().map((l) => [l.level, l.msg])).toEqual([[40, 'w'], [50, 'e'], [60, 'f']]);
    const all = capture('trace');
    for (const m of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) all.log[m](m);
    expect(all.parsed().map((l) => l.level)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('writes nothing at level silent, and refuses a level it does not know, naming it', () => {
    const { lines, log } = capture('silent');
    log.fatal({ a: 1 }, 'x');
    expect(lines).toEqual([]);
    expect(() => createNodeLog('loud' as LevelName)).toThrow(/log level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/);
  });

  it('keeps a line whose values JSON cannot hold, and never writes a key twice', () => {
    const { lines, log, parsed } = capture();
    const cycle: Record<string, unknown> = { name: 'c' };
    cycle.self = cycle;
    const err = new RangeError('disk full');
    log.error({ err, big: 12345678901234567890n, cycle, gone: undefined, fn: () => 1, level: 'x', time: 0, msg: 'shadow', ok: true }, 'odd values');
    expect(lines).toHaveLength(1);
    for (const k of ['level', 'time', 'msg', 'node']) expect(lines[0]!.match(new RegExp(`"${k}":`, 'g')), k).toHaveLength(1);
    const [l] = parsed();
    expect(l).toMatchObject({ level: 50, msg: 'odd values', big: '12345678901234567890', cycle: '[object Object]', ok: true });
    expect(l!.err).toMatchObject({ type: 'RangeError', message: 'disk full' });
    expect(String((l!.err as { stack: string }).stack)).toContain('RangeError: disk full');
    expect(l).not.toHaveProperty('gone');
    expect(l).not.toHaveProperty('fn');
  });

  it('writes fields without a message, and a message without fields', () => {
    const { log, parsed } = capture();
    log.info({ term: 4 });
    log.info('plain');
    const [a, b] = parsed();
    expect(a).toMatchObject({ level: 30, node: 'n2', term: 4 });
    expect(a).not.toHaveProperty('msg');
    expect(b).toMatchObject({ level: 30, node: 'n2', cluster: 'dev', msg: 'plain' });
    // As pino: a `msg` field is the message when no message argument is given.
    log.warn({ msg: 'from the fields', term: 5 });
    expect(parsed()[2]).toMatchObject({ level: 40, msg: 'from the fields', term: 5 });
  });

  it('writes whole lines to a file descriptor, and drops them without throwing when it is not open', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-log-'));
    try {
      const file = join(dir, 'n1.log');
      const fd = openSync(file, 'a');
      try {
        const log = createNodeLog('info', { node: 'n1' }, fd);
        log.info({ text: 'é'.repeat(5000) }, 'long line');
        log.warn('second');
      } finally {
        closeSync(fd);
      }
      const got = readFileSync(file, 'utf8').split('\n');
      expect(got).toHaveLength(3);
      expect(JSON.parse(got[0]!)).toMatchObject({ node: 'n1', msg: 'long line', text: 'é'.repeat(5000) });
      expect(JSON.parse(got[1]!)).toMatchObject({ level: 40, msg: 'second' });
      // A descriptor no process has open (EBADF): the line is lost, the caller goes on.
      expect(() => createNodeLog('info', {}, 1_000_000).error('nowhere')).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createNodeLog on a reader that stops reading', () => {
  it('drops lines after one second in vain instead of holding each up, and writes again once the reader reads', async () => {
    // A real non-blocking socket (the child's stdin, as libuv makes it) whose reader does
    // not read until it gets SIGUSR1; then it copies what it reads into a file.
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-log-'));
    const out = join(dir, 'read.log');
    const child = spawnTied('sh', ['-c', `trap 'exec cat > "${out}"' USR1; while :; do sleep 0.05; done`], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const fd = (child.stdin as unknown as { _handle: { fd: number } })._handle.fd;
      expect(fd).toBeGreaterThan(2);
      // Fill the socket's buffer until it answers EAGAIN (bounded: 64 MiB at most).
      const block = Buffer.alloc(65536, 0x20);
      let full = false;
      for (let i = 0; i < 1024 && !full; i++) {
        try {
          writeSync(fd, block);
        } catch (e) {
          expect((e as NodeJS.ErrnoException).code).toBe('EAGAIN');
          full = true;
        }
      }
      expect(full).toBe(true);
      const log = createNodeLog('info', { node: 'n1' }, fd);
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) log.warn({ i }, 'nobody reads');
      // The first line waits ~1 s, the 19 after it not at all (each waiting would be 20 s).
      expect(performance.now() - t0).toBeLessThan(10_000);
      child.kill('SIGUSR1');
      // Once the reader drains, a line gets through again, on a line of its own.
      let got = '';
      for (let i = 0; i < 400 && !/"msg":"read again"/.test(got); i++) {
        log.info('read again');
        await new Promise((r) => setTimeout(r, 25));
        got = existsSync(out) ? readFileSync(out, 'latin1') : '';
      }
      const lines = got.split('\n').filter((l) => l.includes('"msg":"read again"'));
      expect(lines.length).toBeGreaterThan(0);
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, node: 'n1', msg: 'read again' });
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('createNodeLog on stdout inherited blocking', () => {
  it('a real process whose stdout is a pipe nobody reads drops lines instead of standing still', async () => {
    // A process inherits its stdout blocking (systemd's journal socket, `quorumd start |
    // tee`): a write to a full pipe then waited for as long as the reader did not read.
    // Here the reader is `sleep 60`, which never reads; the child writes ~300 KB of lines
    // and then says how long that took in a file of its own.
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-log-'));
    const done = join(dir, 'done');
    // Plain node, no loader (tsx itself makes stdout non-blocking, which hid this): the
    // log module bundled to JavaScript as scripts/build.mjs bundles a node.
    const logModule = join(dir, 'log.mjs');
    buildSync({ entryPoints: [join(import.meta.dirname, '..', '..', 'daemon', 'log.ts')], bundle: true, platform: 'node', format: 'esm', outfile: logModule, logLevel: 'silent' });
    const script = join(dir, 'child.mjs');
    writeFileSync(script, [
      `import { writeFileSync } from 'node:fs';`,
      `import { createNodeLog } from ${JSON.stringify(logModule)};`,
      `const log = createNodeLog('info', { node: 'n1' });`,
      `const t0 = performance.now();`,
      `for (let i = 0; i < 2000; i++) log.info({ i, pad: 'x'.repeat(100) }, 'a line nobody reads');`,
      `writeFileSync(${JSON.stringify(done)}, String(Math.round(performance.now() - t0)));`,
    ].join('\n'));
    const sh = spawnTied('sh', ['-c', `"${process.execPath}" "${script}" | sleep 60`], { stdio: 'ignore', detached: true });
    try {
      const end = performance.now() + 40_000;
      while (!existsSync(done) && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(done), 'the child to finish its lines while nobody reads its stdout').toBe(true);
      // The first line that finds the pipe full waits ~1 s, the rest are dropped at once.
      expect(Number(readFileSync(done, 'utf8'))).toBeLessThan(20_000);
    } finally {
      try {
        process.kill(-sh.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('runtimeLogger', () => {
  it("drops the runtime's numeric own-node field: the line keeps the node's name, once", () => {
    const { lines, log } = capture();
    runtimeLogger(log)('error', 'fatal: node stops', { node: 2, error: 'storage I/O failed', kind: 'StorageIoError' });
    expect(lines).toHaveLength(1);
    // Count the keys in the text: JSON.parse would hide a duplicate by keeping the last.
    expect(lines[0]!.match(/"node":/g)).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ node: 'n2', cluster: 'dev', msg: 'fatal: node stops', error: 'storage I/O failed', kind: 'StorageIoError', level: 50 });
  });

  it('passes other fields, and lines without fields, through unchanged', () => {
    const { log, parsed } = capture();
    const rl = runtimeLogger(log);
    rl('info', 'peer gone', { peer: 3, link: 'mqtt' });
    rl('warn', 'plain');
    expect(parsed()).toEqual([
      expect.objectContaining({ node: 'n2', msg: 'peer gone', peer: 3, link: 'mqtt', level: 30 }),
      expect.objectContaining({ node: 'n2', msg: 'plain', level: 40 }),
    ]);
  });

  it("takes an embedder's pino logger as well (startNode's pino option)", () => {
    const lines: string[] = [];
    const p: NodeLog = pino({ level: 'debug', base: { node: 'n2', cluster: 'dev' } }, { write: (s: string) => void lines.push(s) });
    runtimeLogger(p)('warn', 'lease lost', { node: 2, term: 7 });
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ node: 'n2', msg: 'lease lost', term: 7, level: 40 })]);
  });
});
