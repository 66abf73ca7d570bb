/**
 * JobScheduler in a real node (startNode: embedded broker, file storage, HTTP API, a
 * one-member cluster that leads at once): the job's environment, results replicated
 * and shown by GET /v1/jobs and `quorumd jobs`, failure / timeout outcomes, overlap
 * skip, and a stop that ends a running job. Real time (node-cron fires on the wall
 * clock), bounded polling; the claim logic itself is tested in virtual time in
 * test/daemon/jobs.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { parseConfigWithPositions, resolveConfig } from '../../../daemon/config/load.ts';
import { startNode, type RunningNode } from '../../../daemon/start.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import * as cmd from '../../../daemon/client/commands.ts';
import { testTokenFile } from '../../helpers/auth.ts';

const KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
let broker: RunningBroker;
let dir: string;
let node: RunningNode;

async function until<T>(what: string, ms: number, f: () => T | undefined | false): Promise<T> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);

beforeAll(async () => {
  broker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
  dir = mkdtempSync(join(tmpdir(), 'quorumd-jobs-run-'));
  const f = (n: string) => JSON.stringify(join(dir, n));
  const text = `cluster: { name: jr, key: ${KEY} }
members:
  - { id: 1, name: solo }
node: { name: solo, dataDir: ${f('data')} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${broker.port}" ] }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
jobs:
  - name: env
    cron: "* * * * * *"
    command: 'echo "$QUORUMD_JOB|$QUORUMD_SLOT|$QUORUMD_SLOT_MS|$QUORUMD_TOKEN|$QUORUMD_TERM|$QUORUMD_NODE|$QUORUMD_CLUSTER|$QUORUMD_API_URL" >> ${join(dir, 'env.txt')}'
  - name: fails
    cron: "* * * * * *"
    command: "exit 3"
  - name: slow
    cron: "* * * * * *"
    command: 'echo start >> ${join(dir, 'slow.txt')}; sleep 2.5; echo end >> ${join(dir, 'slow.txt')}'
  - name: hangs
    cron: "* * * * * *"
    command: 'echo $$ >> ${join(dir, 'hang.txt')}; sleep 30'
    timeoutMs: 300
`;
  const { config, locate } = parseConfigWithPositions(text, 'jr.yaml');
  node = await startNode(resolveConfig(config, join(dir, 'jr.yaml'), locate), { pino: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await node?.stop();
  await new Promise<void>((r) => broker.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('JobScheduler in a running node', () => {
  it('runs each job on the active leader with its slot, token and term in the environment; results are replicated and shown', async () => {
    const env = await until('two runs of the env job', 15_000, () => (lines(join(dir, 'env.txt')).length >= 2 ? lines(join(dir, 'env.txt')) : undefined));
    const [job, slotIso, slotMs, token, term, nodeName, cluster, api] = env[0]!.split('|');
    expect(job).toBe('env');
    expect(Date.parse(slotIso!)).toBe(Number(slotMs));
    expect(Number(slotMs) % 1000).toBe(0);
    expect(Number(token)).toBeGreaterThan(0);
    expect(Number(term)).toBeGreaterThan(0);
    expect(nodeName).toBe('solo');
    expect(cluster).toBe('jr');
    expect(api).toBe(node.url);
    // Successive runs: later slots, one second apart at least.
    const slots = env.map((l) => Number(l.split('|')[2]));
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(1000);

    // The replicated table: the env job's last run is ok, the failing one failed with its code.
    let jobs: Array<{ name: string; last: { result: string; exitCode: number | null; node: string; slot: string } | null; nextRun: string | null }> = [];
    for (let i = 0; i < 200; i++) {
      jobs = jsonOf(await call(node.url, 'GET', '/v1/jobs')).jobs as typeof jobs;
      const by = Object.fromEntries(jobs.map((j) => [j.name, j]));
      if (by.env?.last?.result === 'ok' && by.fails?.last?.result === 'failed' && by.hangs?.last?.result === 'timeout') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const by = Object.fromEntries(jobs.map((j) => [j.name, j]));
    expect(by.env!.last).toMatchObject({ result: 'ok', exitCode: 0, node: 'solo' });
    expect(by.fails!.last).toMatchObject({ result: 'failed', exitCode: 3 });
    expect(by.hangs!.last).toMatchObject({ result: 'timeout' });
    expect(Date.parse(by.env!.nextRun!)).toBeGreaterThan(Date.parse(by.env!.last!.slot));
    expect(node.runtime.stateMachine.job('env')?.result?.outcome).toBe('ok');

    // `quorumd jobs` prints the same as a table.
    const o = { out: '', err: '' };
    const rc = await cmd.jobs(node.url, {}, { out: (s) => void (o.out += String(s)), err: (s) => void (o.err += s) });
    expect(rc).toBe(0);
    expect(o.out).toMatch(/^JOB\s+CRON\s+LAST SLOT\s+NODE\s+RESULT\s+TOOK\s+NEXT RUN$/m);
    expect(o.out).toMatch(/^fails\s+\* \* \* \* \* \*\s+\S+Z\s+solo\s+failed\(3\)/m);
  }, 40_000);

  it('overlap: skip — a slot that comes while the run of the job still goes is not started', async () => {
    const f = join(dir, 'slow.txt');
    await until('two finished slow runs', 20_000, () => lines(f).filter((l) => l === 'end').length >= 2);
    // start/end strictly alternate: never two runs at once.
    const l = lines(f);
    for (let i = 0; i < l.length; i++) expect(l[i]).toBe(i % 2 === 0 ? 'start' : 'end');
  }, 30_000);

  it('a run past its timeout is killed (its process group too), and stop() ends running jobs', async () => {
    const pids = await until('a hanging run', 10_000, () => (lines(join(dir, 'hang.txt')).length >= 1 ? lines(join(dir, 'hang.txt')) : undefined));
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // The first hanging run was killed 300 ms after it started (bounded wait).
    await until('the first hanging run to be gone', 5000, () => !alive(Number(pids[0])));
    await node.stop();
    const all = lines(join(dir, 'hang.txt')).map(Number);
    for (const p of all) expect(alive(p), `pid ${p} still alive after stop`).toBe(false);
    expect(node.jobs!.localRuns.some((r) => r.job === 'hangs' && r.result.timedOut)).toBe(true);
  }, 30_000);
});
