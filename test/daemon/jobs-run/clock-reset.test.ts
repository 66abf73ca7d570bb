/**
 * `quorumd jobs reset` on real `quorumd start` processes: three members, each with its
 * own libfaketime clock (as in clock-step.test.ts: FAKETIME_TIMESTAMP_FILE rewritten by
 * the test, CLOCK_MONOTONIC left alone), a job every 5 s.
 *
 *   - the leader's clock steps an hour ahead: it catches up on the newest skipped slot
 *     and claims it, a slot an hour in the future;
 *   - its clock is put right: the job stays refused (no slot runs; the leader's next run
 *     is after the future claim, an hour away);
 *   - `quorumd jobs reset every5 --node <a follower>` (the CLI, forwarded to the leader)
 *     withdraws it: the job runs again within a bounded poll, without a restart;
 *   - a second reset says there is nothing to withdraw; an unknown job is a 404.
 *
 * Skipped when libfaketime is not installed (Debian: apt-get install faketime).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import * as cmd from '../../../daemon/client/commands.ts';
import { spawnTied } from '../../helpers/tied.ts';
import { testTokenFile } from '../../helpers/auth.ts';
import { freePort } from '../../helpers/ports.ts';

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
const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'quorumd.js');
const NAMES = ['n1', 'n2', 'n3'] as const;

let broker: RunningBroker | undefined;
const children: ChildProcess[] = [];
let dir: string | undefined;

async function until<T>(what: string, ms: number, f: () => T | undefined | false | Promise<T | undefined | false>, log?: () => string): Promise<T> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${log ? `\n${log()}` : ''}`);
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await Promise.race([new Promise((r) => c.once('exit', r)), new Promise((r) => setTimeout(r, 5_000))]);
  }
}

afterAll(async () => {
  await Promise.all(children.map(stop));
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface JobsView {
  name: string;
  nextRun: string | null;
  last: { slot: string; node: string } | null;
  reset: { at: string; floor: string; node: string; withdrawn: { slot: string; node: string; term: number } } | null;
}

describe.skipIf(LIB === undefined)('quorumd jobs reset on real nodes whose wall clocks are stepped (libfaketime; skipped without it: apt-get install faketime)', () => {
  it('a future claim of a leader whose clock was ahead stops the job until a reset through a follower withdraws it; a second reset has nothing to withdraw', async () => {
    broker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
    dir = mkdtempSync(join(tmpdir(), 'quorumd-clock-reset-'));
    const d = dir;
    const tokenFile = testTokenFile();
    const slotsFile = join(d, 'slots.txt');
    const ports = [await freePort(), await freePort(), await freePort()];
    const url = (i: number) => `http://127.0.0.1:${ports[i]}`;
    const stepFile = (i: number) => join(d, `faketime-${NAMES[i]}`);
    const step = (i: number, s: number) => writeFileSync(stepFile(i), `${s >= 0 ? '+' : ''}${s}\n`);
    const outs = ['', '', ''];
    for (let i = 0; i < 3; i++) {
      step(i, 0);
      writeFileSync(
        join(d, `${NAMES[i]}.yaml`),
        `cluster: { name: cr, key: ${KEY} }
members:
  - { id: 1, name: n1 }
  - { id: 2, name: n2 }
  - { id: 3, name: n3 }
node: { name: ${NAMES[i]}, dataDir: ${JSON.stringify(join(d, `data-${NAMES[i]}`))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${broker.port}" ] }
http: { listen: "127.0.0.1:${ports[i]}", tokenFile: ${JSON.stringify(tokenFile)} }
jobs:
  - { name: every5, cron: "*/5 * * * * *", command: 'echo "$QUORUMD_SLOT $QUORUMD_NODE" >> ${slotsFile}' }
`,
      );
      const c = spawnTied(process.execPath, [BIN, 'start', '--config', join(d, `${NAMES[i]}.yaml`)], {
        env: { ...process.env, LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: stepFile(i), FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(c);
      c.stdout!.on('data', (b: Buffer) => (outs[i] += b.toString()));
      c.stderr!.on('data', (b: Buffer) => (outs[i] += b.toString()));
    }
    /** Runs as [slot ms, node name], in the order they ran. */
    const runs = () => (existsSync(slotsFile) ? readFileSync(slotsFile, 'utf8').split('\n').filter(Boolean).map((l) => [Date.parse(l.split(' ')[0]!), l.split(' ')[1]!] as const) : []);
    const tail = () => `runs: ${runs().map(([s, n]) => `${new Date(s).toISOString()}@${n}`).join(' ')}\n` + outs.map((o, i) => `${NAMES[i]} log tail:\n${o.split('\n').slice(-12).join('\n')}`).join('\n');
    const status = async (i: number) => {
      try {
        const r = await call(url(i), 'GET', '/v1/status', { timeoutMs: 2000 });
        return r.status === 200 ? (jsonOf(r) as { role: string; active: boolean; leader: string | null }) : undefined;
      } catch {
        return undefined;
      }
    };
    const jobsOf = async (i: number) => ((jsonOf(await call(url(i), 'GET', '/v1/jobs')).jobs ?? []) as JobsView[]).find((j) => j.name === 'every5')!;

    // The cluster elects an active leader, and the job runs.
    const L = await until('an active leader', 60_000, async () => {
      for (let i = 0; i < 3; i++) {
        const s = await status(i);
        if (s?.role === 'leader' && s.active) return i + 1;
      }
      return undefined;
    }, tail) - 1;
    await until('a run of the job', 30_000, () => runs().length >= 1, tail);
    const F = (L + 1) % 3; // a follower

    // The leader's clock steps an hour ahead: it catches up on the newest slot it skipped,
    // an hour in the future of every other clock, and claims it.
    step(L, 3600);
    const [future] = await until('a run of a slot an hour ahead', 30_000, () => runs().find(([s]) => s > Date.now() + 1_800_000), tail);
    expect(runs().find(([s]) => s === future)![1]).toBe(NAMES[L]);

    // Its clock is put right: the job stays refused — the next run is after the future claim.
    step(L, 0);
    const putRight = Date.now();
    await until('the leader to see its clock set back', 30_000, () => outs[L]!.includes('the wall clock was set back'), tail);
    const held = await jobsOf(L);
    expect(Date.parse(held.nextRun!)).toBeGreaterThan(future);
    expect(held.last!.slot).toBe(new Date(future).toISOString());
    // A whole period of the job passes without a run (the slots are refused, not lost to load).
    await until('a period of the job past the correction', 15_000, () => Date.now() > putRight + 6_000);
    expect(runs().filter(([s]) => s > putRight - 5_000 && s < future)).toEqual([]);

    // `quorumd jobs reset` through a follower (the CLI process; the follower forwards it).
    const cli = spawnTied(process.execPath, [BIN, 'jobs', 'reset', 'every5', '--node', url(F)], { env: { ...process.env, QUORUMD_API_TOKEN_FILE: tokenFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(cli);
    let cliOut = '';
    cli.stdout!.on('data', (b: Buffer) => (cliOut += b.toString()));
    cli.stderr!.on('data', (b: Buffer) => (cliOut += b.toString()));
    const code = await until('the CLI to exit', 30_000, () => cli.exitCode ?? undefined, () => cliOut);
    const resetAt = Date.now();
    expect(cliOut).toContain(`reset: job every5: withdrew slot ${new Date(future).toISOString()} (claimed by ${NAMES[L]}, term `);
    expect(code).toBe(0);

    // The job runs again, at slots of the right time, without a restart.
    const [again] = await until('a run after the reset', 30_000, () => runs().find(([s]) => s > putRight && s < Date.now() + 60_000), tail);
    expect(again).toBeLessThanOrEqual(resetAt + 15_000);
    const shown = await jobsOf(F);
    expect(shown.reset).toMatchObject({ withdrawn: { slot: new Date(future).toISOString(), node: NAMES[L] } });
    expect(Date.parse(shown.reset!.floor)).toBeLessThan(again);

    // A second reset has nothing to withdraw (asked of the leader itself this time); an unknown job is a 404.
    const io = { out: '', err: '' };
    const out = { out: (s: string | Uint8Array) => void (io.out += String(s)), err: (s: string) => void (io.err += s) };
    const rc2 = await cmd.jobReset(url(L), 'every5', out);
    expect(io.err).toMatch(/quorumd jobs reset: 409: nothing to withdraw: the latest claim \S+Z is not after the leader's clock \S+Z; if the leader's clock is the wrong one, fix it first/);
    expect(rc2).not.toBe(0);
    io.err = '';
    const rc3 = await cmd.jobReset(url(F), 'nope', out);
    expect(io.err).toContain('quorumd jobs reset: 404: no job named "nope" in this node\'s jobs: list (configured: every5)');
    expect(rc3).not.toBe(0);

    // At most once throughout: no slot ran twice.
    const slots = runs().map(([s]) => s);
    expect(new Set(slots).size).toBe(slots.length);
  }, 240_000);
});
