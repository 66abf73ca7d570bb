/**
 * A real `quorumd start` process whose wall clock is stepped while it runs, with
 * libfaketime (LD_PRELOAD; FAKETIME_TIMESTAMP_FILE rewritten by the test,
 * FAKETIME_NO_CACHE=1 so that every clock read sees it, FAKETIME_DONT_FAKE_MONOTONIC=1
 * so that CLOCK_MONOTONIC — Node's timers, performance.now() — is left alone, as on a
 * board whose clock NTP steps). One-member cluster (leads at once), a job every 5 s.
 *
 *   - the clock goes ten years ahead for about 3 s, over one of the job's slots, and is
 *     corrected: the job goes on with the slots of the corrected time (it had stopped
 *     for the ten years: the timer waited for the slot it computed on the wrong clock);
 *   - the same while the node is stopped (SIGSTOP) over a slot: it notices the step
 *     between slots, seconds before a slot of the wrong time, and claims nothing there;
 *   - the clock steps 3602 s forward: the newest slot it skipped runs once, 2 s late
 *     (it was missed: more than 1 s late).
 *
 * The rules themselves are tested in fake time in test/daemon/jobs/scheduler-timing.test.ts;
 * this one shows that the real process, its timers and libuv see the steps that way.
 * Skipped when libfaketime is not installed (Debian: apt-get install faketime).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { spawnTied } from '../../helpers/tied.ts';
import { testTokenFile } from '../../helpers/auth.ts';

/** libfaketime's preload library, where Debian and Ubuntu put it (any architecture). */
function findLibFaketime(): string | undefined {
  const dirs = ['/usr/lib/faketime', '/usr/local/lib/faketime'];
  try {
    for (const e of readdirSync('/usr/lib')) if (existsSync(`/usr/lib/${e}/faketime`)) dirs.push(`/usr/lib/${e}/faketime`);
  } catch {
    /* no /usr/lib */
  }
  return dirs.map((d) => join(d, 'libfaketime.so.1')).find((f) => existsSync(f));
}
const LIB = findLibFaketime();

const KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const TEN_YEARS_S = 3652 * 86_400; // a whole number of the job's 5 s periods
const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'quorumd.js');

let broker: RunningBroker | undefined;
let child: ChildProcess | undefined;
let dir: string | undefined;

async function until<T>(what: string, ms: number, f: () => T | undefined | false, log?: () => string): Promise<T> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${log ? `\n${log()}` : ''}`);
}

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(LIB === undefined)('a real node whose wall clock is stepped (libfaketime; skipped without it: apt-get install faketime)', () => {
  it('a ten-year step corrected within a slot period does not stop the job; a forward step of an hour runs the newest skipped slot once', async () => {
    broker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
    dir = mkdtempSync(join(tmpdir(), 'quorumd-clock-step-'));
    const d = dir;
    const slotsFile = join(d, 'slots.txt');
    const stepFile = join(d, 'faketime');
    writeFileSync(stepFile, '+0\n');
    writeFileSync(
      join(d, 'node.yaml'),
      `cluster: { name: cs, key: ${KEY} }
members:
  - { id: 1, name: solo }
node: { name: solo, dataDir: ${JSON.stringify(join(d, 'data'))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${broker.port}" ] }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
jobs:
  - { name: every5, cron: "*/5 * * * * *", command: 'echo "$QUORUMD_SLOT" >> ${slotsFile}' }
`,
    );
    let out = '';
    child = spawnTied(process.execPath, [BIN, 'start', '--config', join(d, 'node.yaml')], {
      env: { ...process.env, LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: stepFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const slots = () => (existsSync(slotsFile) ? readFileSync(slotsFile, 'utf8').split('\n').filter(Boolean) : []);
    const tail = () => `slots: ${slots().join(' ')}\nlog tail:\n${out.split('\n').slice(-15).join('\n')}`;
    const step = (s: number) => writeFileSync(stepFile, `${s >= 0 ? '+' : ''}${s}\n`);
    // At `phase` ms into one of the job's 5 s periods (this test's clock is not faked).
    const atPhase = (lo: number, hi: number) => until(`a moment ${lo}-${hi} ms into a 5 s period`, 10_000, () => Date.now() % 5000 >= lo && Date.now() % 5000 < hi);

    await until('the first run of the job', 30_000, () => slots().length >= 1, tail);

    // Ten years ahead from 2-3 s before a slot S until 1.5 s after it: the node's timer
    // for S wakes on that wrong clock; then corrected.
    await atPhase(2000, 3000);
    const s = Math.ceil(Date.now() / 5000) * 5000;
    step(TEN_YEARS_S);
    await until('1.5 s after the slot', 10_000, () => Date.now() >= s + 1500);
    step(0);
    const corrected = Date.now();
    const after = await until('a run of a slot after the correction', 20_000, () => slots().find((x) => Date.parse(x) > corrected), tail);
    expect(Date.parse(after) - corrected).toBeLessThanOrEqual(10_000);
    // No slot of the wrong time ran (a claim of one would refuse every slot for ten years).
    expect(slots().filter((x) => Date.parse(x) > Date.now() + 86_400_000)).toEqual([]);

    // The same step while the node stands still (SIGSTOP, as a busy board) over a slot s0,
    // and resumes 3 s after it: it notices the step 2 s before the next slot of the wrong
    // time, not at a slot, and still claims nothing of that time (the correction comes
    // 4.5 s after the notice, within the job's 5 s period). It ran s0 + 10 years here once
    // (CI, a loaded machine), and did so every time with this SIGSTOP.
    await atPhase(4700, 4800);
    const s0 = Math.ceil(Date.now() / 5000) * 5000;
    child!.kill('SIGSTOP');
    try {
      await until('2.5 s after the slot s0', 10_000, () => Date.now() >= s0 + 2500);
      step(TEN_YEARS_S);
      await until('3 s after the slot s0', 10_000, () => Date.now() >= s0 + 3000);
    } finally {
      child!.kill('SIGCONT');
    }
    await until('1.5 s after the slot after s0', 10_000, () => Date.now() >= s0 + 6500);
    step(0);
    const corrected2 = Date.now();
    const after2 = await until('a run of a slot after the second correction', 20_000, () => slots().find((x) => Date.parse(x) > corrected2), tail);
    expect(Date.parse(after2) - corrected2).toBeLessThanOrEqual(10_000);
    expect(slots().filter((x) => Date.parse(x) > Date.now() + 86_400_000)).toEqual([]);

    // 3602 s forward, 1 s into a period: the timer for the next slot wakes at
    // 3607 s past its slot's period start: the newest skipped slot, 3605 s on, runs.
    await atPhase(1000, 2000);
    const base = Math.floor(Date.now() / 5000) * 5000;
    step(3602);
    const want = new Date(base + 3_605_000).toISOString();
    await until(`the run of ${want}`, 20_000, () => slots().includes(want), tail);
    expect(out).toContain('the wall clock stepped forward 3602 s');
    expect(slots().filter((x) => Date.parse(x) > base && Date.parse(x) < base + 3_605_000)).toEqual([]);
  }, 120_000);
});
