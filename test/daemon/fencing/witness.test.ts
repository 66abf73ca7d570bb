/**
 * Two boards + a witness as real processes (`quorumd start` ×2, `quorumd witness`):
 * they elect, commit, survive a SIGKILL of the leader (the other board and the witness
 * elect it; it becomes active once the old leader's lease bound has passed, since this
 * cluster has no relays), and the witness never leads and keeps no data.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import { bin, freePort } from '../e2e/proc-cluster.ts';
import { poll } from './helpers.ts';
import { testTokenFile } from '../../helpers/auth.ts';

const KEY = 'a1'.repeat(32);
let broker: RunningBroker | undefined;
const children = new Set<ChildProcess>();
let dir = '';

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(name: string, port: number, brokerPort: number): string {
  return `cluster: { name: pair, id: 7, key: ${KEY} }
members:
  - { id: 1, name: pi-a }
  - { id: 2, name: pi-b }
  - { id: 3, name: wit, role: witness }
node: { name: ${name}, dataDir: ${JSON.stringify(join(dir, name))} }
mqtt: { brokers: [mqtt://127.0.0.1:${brokerPort}], keepaliveSec: 5 }
http: { listen: 127.0.0.1:${port}, tokenFile: ${JSON.stringify(testTokenFile())} }
raft: { electionTimeoutMinMs: 300, electionTimeoutMaxMs: 600, heartbeatMs: 50 }
fencing:
  watchdogTimeoutMs: 1000      # no relays here: a new leader waits out the old one's lease + watchdog bound
  activation: { leaseMs: 600 }
log: { level: info }
`;
}

describe('two boards + witness', () => {
  it('elect, commit, survive a SIGKILL of the leader; the witness never leads', async () => {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-witness-'));
    broker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 7, keys: [Buffer.from(KEY, 'hex')] }] });
    const names = ['pi-a', 'pi-b', 'wit'];
    const ports = [await freePort(), await freePort(), await freePort()];
    const url = (i: number) => `http://127.0.0.1:${ports[i]}`;
    const procs: Array<ChildProcess | undefined> = [];
    names.forEach((n, i) => {
      const file = join(dir, `${n}.yaml`);
      writeFileSync(file, config(n, ports[i]!, broker!.port));
      const c = spawnTied(process.execPath, [bin, n === 'wit' ? 'witness' : 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      const log = createWriteStream(join(dir, `${n}.log`));
      c.stdout!.pipe(log);
      c.stderr!.pipe(log);
      children.add(c);
      procs.push(c);
    });
    // A failure shows what each process said and how it ended (the temp dir is removed).
    const ended = new Map<string, string>();
    names.forEach((n, i) => procs[i]!.on('exit', (code, sig) => ended.set(n, `exit ${code ?? ''}${sig ?? ''}`)));
    onTestFailed(() => {
      for (const n of names) {
        let tail = '';
        try {
          tail = readFileSync(join(dir, `${n}.log`), 'utf8').split('\n').slice(-25).join('\n');
        } catch {
          /* no log */
        }
        console.log(`--- ${n} (${ended.get(n) ?? 'running'}), last lines of its log:\n${tail}`);
      }
    });
    const status = async (i: number) => jsonOf(await call(url(i), 'GET', '/v1/status', { timeoutMs: 1500 }));
    const leaders = new Set<string>();
    const watchLeaders = async () => {
      for (let i = 0; i < 3; i++) {
        if (!procs[i]) continue;
        try {
          const s = await status(i);
          if (s.role === 'leader') leaders.add(String(s.id));
          if (typeof s.leader === 'string') leaders.add(s.leader);
        } catch {
          /* down */
        }
      }
    };

    const first = await poll('an active leader', 30_000, async () => {
      await watchLeaders();
      for (const i of [0, 1]) {
        const s = await status(i);
        if (s.active === true && s.role === 'leader') return { i, term: s.term as number };
      }
      return undefined;
    });
    const w = await call(url(first.i), 'PUT', '/v1/kv/k', { body: 'v1' });
    expect(w.status).toBe(200);
    const idx = (jsonOf(w).index as number);
    // The witness acknowledges the log (its commit index follows) but holds no data.
    await poll('the witness to learn the commit', 10_000, async () => ((await status(2)).commitIndex as number) >= idx || undefined);
    const wg = await call(url(2), 'GET', '/v1/kv/k', { timeoutMs: 3000 });
    expect(wg.status).toBe(503);
    expect(wg.body.toString()).toMatch(/witness/);

    // SIGKILL the leader: the other board and the witness (2 of 3) take over — once the
    // other board has the write. Killed before that (a board that started late, a busy
    // machine), the write is committed on the leader and the witness only: the witness
    // rightly refuses its vote to a board that lacks it, and the cluster waits for the
    // dead leader (docs/fencing.md, "Two boards + witness").
    const other = first.i === 0 ? 1 : 0;
    await poll('the other board to have the write', 30_000, async () => ((await status(other)).commitIndex as number) >= idx || undefined);
    procs[first.i]!.kill('SIGKILL');
    procs[first.i] = undefined;
    const t0 = Date.now();
    const second = await poll('the other board active', 30_000, async () => {
      await watchLeaders();
      const s = await status(other);
      return s.active === true && s.role === 'leader' ? s : undefined;
    });
    const failoverMs = Date.now() - t0;
    console.log(`two boards + witness: SIGKILL of the leader → other board active in ${failoverMs} ms (lease bound, no relays)`);
    expect(second.term as number).toBeGreaterThan(first.term);
    // No relays: the old leader was cleared by its lease bound (or it was never a suspect).
    expect(Object.values(second.clearedBy as Record<string, string>).every((r) => r === 'lease-expired'), JSON.stringify(second.clearedBy)).toBe(true);
    const w2 = await call(url(other), 'PUT', '/v1/kv/k', { body: 'v2' });
    expect(w2.status).toBe(200);
    const r = await call(url(other), 'GET', '/v1/kv/k');
    expect(r.body.toString()).toBe('v2');
    // The witness never led, and nobody ever saw it as leader.
    await watchLeaders();
    expect(leaders.has('wit')).toBe(false);
    expect([...leaders].sort()).toEqual(['pi-a', 'pi-b']);
    const wl = readFileSync(join(dir, 'wit.log'), 'utf8');
    expect(wl).toContain('witness started');
    expect(wl).not.toMatch(/"msg":"(elected|active)/);
    // Bounded: lease (600 ms × drift) + watchdog 1000 ms + election; generous for a loaded machine.
    expect(failoverMs).toBeLessThan(20_000);
    for (const c of children) c.kill('SIGTERM');
  }, 90_000);
});
