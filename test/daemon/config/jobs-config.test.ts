/**
 * The `jobs:` section (issue 8): defaults, and every mistake named with the job, the
 * key, the line and what was expected — a bad cron expression by node-cron's
 * `validate`, with the job name and the expression, also through `quorumd config validate`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { good as base, problems, root } from './helpers.ts';
import { loadJobsFile, parseConfigText } from '../../../daemon/config/load.ts';
import { childOutcome, loadJobsFileApart } from '../../../daemon/config/jobs-file.ts';

describe('jobs config', () => {
  /** Temp dirs of the cases below, removed at the end (a failed case included). */
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'qjobs-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  it('no jobs by default; a job gets the documented defaults', () => {
    expect(parseConfigText(base).jobs).toEqual([]);
    const c = parseConfigText(`${base}jobs:\n  - name: meters\n    cron: "*/15 * * * *"\n    command: /usr/local/bin/read-meters\n`);
    expect(c.jobs).toEqual([{ name: 'meters', cron: '*/15 * * * *', command: '/usr/local/bin/read-meters', timeoutMs: 600_000, timezone: 'UTC', overlap: 'skip' }]);
  });

  it('a bad cron expression is named with the job, the expression and the field', () => {
    const p = problems(`${base}jobs:\n  - name: ok\n    cron: "0 2 * * *"\n    command: "true"\n  - name: meters\n    cron: "61 * * * *"\n    command: "true"\n`);
    expect(p).toHaveLength(1);
    expect(p[0]!.key).toBe('jobs.1.cron');
    expect(p[0]!.line).toBe(18);
    expect(p[0]!.message).toMatch(/^job "meters": "61 \* \* \* \*" is not a valid cron expression \(minute: 61 is a invalid expression for minute\); expected 5 fields/);
    // Too many fields, words, an empty string.
    for (const bad of ['* * * * * * *', 'every day', '']) {
      const q = problems(`${base}jobs:\n  - { name: j, cron: ${JSON.stringify(bad)}, command: "true" }\n`);
      expect(q.map((x) => x.key)).toEqual(['jobs.0.cron']);
      expect(q[0]!.message).toContain(`job "j": ${JSON.stringify(bad)} is not a valid cron expression`);
    }
  });

  it('a range with a huge bound is refused at once, not expanded (node-cron took 19 s and 2 GB for 1-10000000)', () => {
    for (const [bad, range] of [['1-10000000 * * * *', '1-10000000'], ['0 0 1-99999999 * *', '1-99999999'], ['0 0 * * 100-1', '100-1']]) {
      const t0 = performance.now();
      const q = problems(`${base}jobs:\n  - { name: j, cron: ${JSON.stringify(bad)}, command: "true" }\n`);
      expect(performance.now() - t0, bad).toBeLessThan(5000);
      expect(q.map((x) => x.key)).toEqual(['jobs.0.cron']);
      expect(q[0]!.message).toContain(`job "j": ${JSON.stringify(bad)} is not a valid cron expression (the range ${range} is out of every field's bounds`);
    }
    // Ranges within the bounds, and steps, are node-cron's to judge as before.
    expect(parseConfigText(`${base}jobs:\n  - { name: j, cron: "0-59/100 1-5 * 1-12 0-6", command: "true" }\n`).jobs).toHaveLength(1);
  });

  it('other mistakes: names, duplicates, time zone, timeout, overlap, unknown keys, engine bully', () => {
    const one = (job: string) => problems(`${base}jobs:\n  - ${job}\n`);
    expect(one('{ name: "Bad Name", cron: "* * * * *", command: "true" }')[0]!.message).toMatch(/expected a job name of 1-48 characters/);
    expect(one('{ name: j, cron: "* * * * *", command: "true", timezone: Mars/Olympus }')[0]).toMatchObject({ key: 'jobs.0.timezone', message: 'job "j": expected an IANA time zone such as UTC or Europe/Berlin, got "Mars/Olympus"' });
    expect(one('{ name: j, cron: "* * * * *", command: "true", timeoutMs: 5 }')[0]).toMatchObject({ key: 'jobs.0.timeoutMs', message: 'expected milliseconds: an integer 100..86400000' });
    expect(one('{ name: j, cron: "* * * * *", command: "true", overlap: queue }')[0]).toMatchObject({ key: 'jobs.0.overlap', message: 'expected "skip" or "allow"' });
    expect(one('{ name: j, cron: "* * * * *", command: "" }')[0]).toMatchObject({ key: 'jobs.0.command' });
    expect(one('{ name: j, cron: "* * * * *", command: "true", shedule: x }')[0]!.message).toMatch(/unknown key "shedule"/);
    expect(one('{ name: j, command: "true" }')[0]).toMatchObject({ key: 'jobs.0.cron' });
    const dup = problems(`${base}jobs:\n  - { name: j, cron: "* * * * *", command: "true" }\n  - { name: j, cron: "* * * * *", command: "true" }\n`);
    expect(dup).toEqual([expect.objectContaining({ key: 'jobs.1.name', message: 'expected a unique job name; "j" appears twice' })]);
    const bully = problems(`${base}engine: bully\njobs:\n  - { name: j, cron: "* * * * *", command: "true" }\n`);
    expect(bully.map((x) => x.key)).toEqual(['jobs']);
    expect(bully[0]!.message).toMatch(/engine: raft/);
  });

  it('`quorumd config validate` rejects a bad cron expression with the job name and the expression (exit 2)', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), `${base}jobs:\n  - name: rotate-logs\n    cron: "0 25 * * *"\n    command: logrotate /etc/logrotate.conf\n`);
    const bin = join(root, 'bin', 'quorumd.js');
    const r = spawnSync(process.execPath, [bin, 'config', 'validate', join(dir, 'bad.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:15:\d+: jobs\.0\.cron: job "rotate-logs": "0 25 \* \* \*" is not a valid cron expression \(hour: /);
  });

  it('an alias bomb is an invalid config (exit 2, FILE:LINE of the first alias), and a job name with control characters is shown quoted', () => {
    // Before, the YAML library's "Excessive alias count" escaped as a bare exception
    // (exit 1, no file named), and a name's ESC went to the terminal raw in the cron error.
    const dir = tempDir();
    const bin = join(root, 'bin', 'quorumd.js');
    const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const [x, y] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd']]) laughs.push(`${x}: &${x} [${Array(9).fill(`*${y}`).join(',')}]`);
    writeFileSync(join(dir, 'bomb.yaml'), `${laughs.join('\n')}\njobs: [*e]\n`);
    for (const args of [['config', 'validate', join(dir, 'bomb.yaml')], ['config', 'validate-jobs', join(dir, 'bomb.yaml')]]) {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/bomb\.yaml:2:8: \(yaml\): not usable YAML: Excessive alias count/);
    }
    writeFileSync(join(dir, 'esc.yaml'), 'jobs:\n  - name: "a\\e[31mb"\n    cron: "61 * * * *"\n    command: "true"\n');
    const r = spawnSync(process.execPath, [bin, 'config', 'validate-jobs', join(dir, 'esc.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('esc.yaml:3:11: jobs.0.cron: job "a\\u001b[31mb": "61 * * * *" is not a valid cron expression');
    expect(r.stderr + r.stdout).not.toContain('\x1b');
  });

  it('quorumd dev --jobs FILE: a file with only a jobs list, checked the same way', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ok.yaml'), 'jobs:\n  - { name: tick, cron: "* * * * * *", command: "date" }\n');
    expect(loadJobsFile(join(dir, 'ok.yaml'))).toEqual([{ name: 'tick', cron: '* * * * * *', command: 'date', timeoutMs: 600_000, timezone: 'UTC', overlap: 'skip' }]);
    writeFileSync(join(dir, 'bad.yaml'), 'jobs:\n  - { name: tick, cron: "* * 32 * *", command: "date" }\n');
    expect(() => loadJobsFile(join(dir, 'bad.yaml'))).toThrow(/bad\.yaml:2:\d+: jobs\.0\.cron: job "tick": "\* \* 32 \* \*" is not a valid cron expression/);
    writeFileSync(join(dir, 'list.yaml'), '- { name: tick }\n');
    expect(() => loadJobsFile(join(dir, 'list.yaml'))).toThrow(/expected a YAML mapping with a `jobs:` list/);
    expect(() => loadJobsFile(join(dir, 'missing.yaml'))).toThrow(/cannot read the file/);
  });

  it('quorumd dev --jobs FILE is checked by a child process (the supervisor keeps no YAML/zod/node-cron): same jobs, same errors', async () => {
    const bin = join(root, 'bin', 'quorumd.js');
    const dir = tempDir();
    writeFileSync(join(dir, 'ok.yaml'), 'jobs:\n  - { name: tick, cron: "* * * * * *", command: "date" }\n  - { name: tock, cron: "0 2 * * *", command: "true", timezone: "Europe/Berlin" }\n');
    expect(await loadJobsFileApart(join(dir, 'ok.yaml'))).toEqual(loadJobsFile(join(dir, 'ok.yaml')));
    writeFileSync(join(dir, 'bad.yaml'), 'jobs:\n  - { name: tick, cron: "* * 32 * *", command: "date" }\n');
    const err = await loadJobsFileApart(join(dir, 'bad.yaml')).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('ConfigError');
    expect((err as Error).message).toMatch(/^\S*bad\.yaml:2:\d+: jobs\.0\.cron: job "tick": "\* \* 32 \* \*" is not a valid cron expression/);
    await expect(loadJobsFileApart(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml:0:0: \(file\): cannot read the file/);
    // Through the CLI: exit 2 and the problem, before any node starts.
    const r = spawnSync(process.execPath, [bin, 'dev', '--jobs', join(dir, 'bad.yaml'), '--data-dir', join(dir, 'data')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration:\n\S*bad\.yaml:2:\d+: jobs\.0\.cron: job "tick"/);
    const v = spawnSync(process.execPath, [bin, 'config', 'validate-jobs', join(dir, 'ok.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/ok\.yaml: ok — 2 jobs: tick \(\* \* \* \* \* \*\), tock \(0 2 \* \* \*\)/);
  });

  it('a jobs or config file that is not a regular file (a named pipe, a device, a directory) is refused at once with exit 2, nothing started', () => {
    // Before, a named pipe blocked the check until a writer came (forever: `dev --jobs`
    // then re-checked it in the supervisor after the child's timeout), and /dev/zero
    // was read until memory ran out. Each check runs as a child with a bound, so a
    // regression fails here instead of hanging the test process.
    const bin = join(root, 'bin', 'quorumd.js');
    const dir = mkdtempSync(join(tmpdir(), 'qjobs-'));
    try {
      const fifo = join(dir, 'jobs.fifo');
      execFileSync('mkfifo', [fifo]);
      mkdirSync(join(dir, 'adir'));
      const cases: Array<[string, RegExp]> = [
        [fifo, /jobs\.fifo:0:0: \(file\): expected a regular file, got a named pipe \(FIFO\)/],
        ['/dev/zero', /\/dev\/zero:0:0: \(file\): expected a regular file, got a character device/],
        [join(dir, 'adir'), /adir:0:0: \(file\): expected a regular file, got a directory/],
      ];
      for (const [file, msg] of cases) {
        for (const args of [['config', 'validate-jobs', file, '--json'], ['config', 'validate', file]]) {
          const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
          expect(r.signal, `${args.join(' ')}: killed by the bound, i.e. it hung`).toBeNull();
          expect(r.status, args.join(' ')).toBe(2);
          expect(r.stderr).toMatch(msg);
        }
      }
      // Through `dev --jobs`: exit 2 before anything starts; no data directory made.
      const r = spawnSync(process.execPath, [bin, 'dev', '--jobs', fifo, '--data-dir', join(dir, 'data')], { encoding: 'utf8', timeout: 30_000 });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/jobs\.fifo:0:0: \(file\): expected a regular file, got a named pipe/);
      expect(existsSync(join(dir, 'data'))).toBe(false);
      // Over the size limit: refused from its size.
      writeFileSync(join(dir, 'huge.yaml'), Buffer.alloc((1 << 20) + 1, 0x61));
      expect(() => loadJobsFile(join(dir, 'huge.yaml'))).toThrow(/huge\.yaml:1:1: \(file\): expected at most 1048576 bytes, got 1048577/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('dev --jobs: what the checking child\'s end means (daemon/config/jobs-file.ts)', () => {
  const r = (x: Partial<Parameters<typeof childOutcome>[0]>) => ({ status: null, signal: null, error: undefined, stdout: '', stderr: '', ...x });
  it('its jobs when it printed them; its message when it refused the file', () => {
    expect(childOutcome(r({ status: 0, stdout: '[{"name":"a"}]\n' }), 'j.yaml')).toEqual([{ name: 'a' }]);
    expect(() => childOutcome(r({ status: 2, stderr: 'quorumd: invalid configuration:\nj.yaml:3:5: jobs.0.cron: expected a cron expression\n' }), 'j.yaml')).toThrow(/^j\.yaml:3:5: jobs\.0\.cron: expected a cron expression$/);
    expect(() => childOutcome(r({ status: 0, stdout: 'not json' }), 'j.yaml')).toThrow(/j\.yaml: unexpected output/);
  });
  it('killed by its time limit or a signal: an error naming the file, never a second check in the supervisor', () => {
    const timedOut = Object.assign(new Error('spawnSync node ETIMEDOUT'), { code: 'ETIMEDOUT' });
    expect(() => childOutcome(r({ signal: 'SIGTERM', error: timedOut }), 'pipe.yaml')).toThrow(/checking the jobs file pipe\.yaml did not finish: the check was stopped after 60 s; expected a regular YAML file/);
    expect(() => childOutcome(r({ signal: 'SIGKILL' }), 'j.yaml')).toThrow(/did not finish: the check was killed \(SIGKILL\)/);
  });
  it('not started at all (no fork possible): checked in this process instead', () => {
    const eagain = Object.assign(new Error('spawnSync node EAGAIN'), { code: 'EAGAIN' });
    expect(childOutcome(r({ error: eagain }), 'j.yaml')).toBe('in-process');
  });
});

describe('secret and PEM files a config names: only regular files, never past a limit', () => {
  it('a cluster key file, an API token file or a TLS certificate that is a named pipe is refused at once (exit 2), not waited on', () => {
    // Each check runs as a child with a bound: a regression fails here instead of hanging.
    const bin = join(root, 'bin', 'quorumd.js');
    const dir = mkdtempSync(join(tmpdir(), 'qsecret-'));
    try {
      for (const name of ['key.fifo', 'token.fifo', 'cert.fifo']) {
        execFileSync('mkfifo', ['-m', '600', join(dir, name)]);
      }
      const keyOk = join(dir, 'cluster.key');
      writeFileSync(keyOk, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
      const node = (extra: string) => `cluster:\n  name: home\n${extra}members:\n  - { id: 1, name: a }\n  - { id: 2, name: b }\n  - { id: 3, name: c }\nnode:\n  name: a\n  dataDir: ${join(dir, 'data')}\nmqtt:\n  brokers: [mqtt://127.0.0.1:1883]\n`;
      const cases: Array<[string, string, RegExp]> = [
        ['key', node(`  keyFile: ${join(dir, 'key.fifo')}\n`), /key\.fifo: expected a regular file, got a named pipe \(FIFO\)/],
        ['token', node(`  keyFile: ${keyOk}\n`) + `http:\n  tokens:\n    - { name: app, scope: read, tokenFile: ${join(dir, 'token.fifo')} }\n`, /token\.fifo: expected a regular file, got a named pipe \(FIFO\)/],
        ['cert', node(`  keyFile: ${keyOk}\n`) + `http:\n  tls: { certFile: ${join(dir, 'cert.fifo')}, keyFile: ${join(dir, 'cert.fifo')} }\n`, /expected a readable PEM file: expected a regular file, got a named pipe \(FIFO\)/],
      ];
      for (const [what, text, msg] of cases) {
        const cfg = join(dir, `${what}.yaml`);
        writeFileSync(cfg, text, { mode: 0o600 });
        const r = spawnSync(process.execPath, [bin, 'config', 'validate', cfg], { encoding: 'utf8', timeout: 30_000 });
        expect(r.signal, `${what}: killed by the bound, i.e. it hung`).toBeNull();
        expect(r.status, `${what}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stderr, what).toMatch(msg);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
