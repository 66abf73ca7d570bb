/**
 * PBFT against Raft on the same 4 real dev nodes (`quorumd dev`: 4 processes, the
 * in-process broker, no relays, no jobs), over HTTP (numbers only; nothing passes or
 * fails). Per engine and round:
 *   - sequential: 40-byte PUTs one after another, p50 / p99 of the client's latency:
 *     raft — one node's answer (the leader's commit, through n1..n3 in turn: followers
 *     forward); pbft — one node's answer (n1..n3 in turn: each proposes as origin), and
 *     pbft "f + 1" — the PbftClient (daemon/client/pbft.ts): the request to one node
 *     and polling every node until f + 1 matching signed replies; and pbft locks through
 *     that client: acquire then release, one after another, p50 / p99 of the pair;
 *   - 8 clients: each keeps one PUT outstanding for `--seconds`, writes/s (one node's
 *     answers; through n1..n4 for raft, n1..n3 for pbft when n4 lies).
 * Rounds alternate raft and pbft (A/B interleaved: the machine's load drifts); the load
 * average is printed before each round. `--liar` starts n4 as a wrong-reply liar (pbft).
 * A cluster that does not get ready within 60 s fails its round (printed with where its
 * logs are kept); it is not started again. Before the pbft complaints (merge 198c5ad)
 * about 1 start in 10 left one replica alone in a higher view, and this bench retried;
 * on main after it, 36 of 36 starts of a 4-node pbft dev cluster (18 with n4 lying) got
 * ready, 34 within 20 s and two in 42 and 48 s, at load 10–18 (2026-12-03). A start
 * that fails now is a bug to look at, not noise to retry.
 *
 *   npm run bench -- pbft-dev [--rounds 2] [--puts 100] [--seconds 10] [--liar]
 */
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { startDev, type DevCluster } from '../daemon/dev.ts';
import { call } from '../daemon/client/http.ts';
import { PbftClient } from '../daemon/client/pbft.ts';
import { freeBasePort } from '../test/helpers/ports.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1 || v > 10_000) {
    console.error(`bench/pbft-dev: ${name} expects an integer 1..10000, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}
const ROUNDS = arg('--rounds', 2);
const PUTS = arg('--puts', 100);
const SECONDS = arg('--seconds', 10);
const LIAR = process.argv.includes('--liar');
const VALUE = 'x'.repeat(40);

const load = () => loadavg().map((x) => x.toFixed(1)).join(' / ');
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function withCluster<T>(engine: 'raft' | 'pbft', fn: (dev: DevCluster, token: string) => Promise<T>): Promise<T> {
  const base = await freeBasePort(4);
  // A start that does not get ready throws (its logs are kept and named): the round fails.
  const dev = await startDev({
    nodes: 4, engine, relays: false, jobs: [], basePort: base, handleSignals: false, out: () => {}, progress: () => {}, readyTimeoutMs: 60_000,
    ...(engine === 'pbft' && LIAR ? { byzantineNode: 4, byzantineMode: 'wrong-reply' } : {}),
  });
  try {
    return await fn(dev, readFileSync(dev.tokenFile, 'utf8').trim());
  } finally {
    await dev.stop();
  }
}

async function sequential(put: (i: number) => Promise<boolean>): Promise<{ p50: number; p99: number; failed: number }> {
  const lat: number[] = [];
  let failed = 0;
  for (let i = 0; i < 5; i++) await put(-1 - i); // warm-up
  for (let i = 0; i < PUTS; i++) {
    const t0 = performance.now();
    if (await put(i)) lat.push(performance.now() - t0);
    else failed++;
  }
  return { p50: pct(lat, 50), p99: pct(lat, 99), failed };
}

async function parallel(urls: string[], token: string): Promise<{ perSec: number; failed: number }> {
  const end = performance.now() + SECONDS * 1000;
  let ok = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, c) => {
    for (let i = 0; performance.now() < end && i < 1_000_000; i++) {
      const r = await call(urls[(c + i) % urls.length]!, 'PUT', `/v1/kv/par-${c}`, { body: VALUE, token, timeoutMs: 10_000 }).catch(() => undefined);
      if (r?.status === 200) ok++;
      else failed++;
    }
  }));
  return { perSec: ok / SECONDS, failed };
}

const f1 = (x: number) => x.toFixed(1);
console.log(`pbft vs raft on 4 dev nodes: ${PUTS} sequential 40-byte puts, 8 clients for ${SECONDS} s, ${ROUNDS} round(s)${LIAR ? ', pbft with n4 lying (wrong-reply)' : ''}`);
for (let round = 1; round <= ROUNDS; round++) {
  for (const engine of ['raft', 'pbft'] as const) {
    const before = load();
    try {
      await withCluster(engine, async (dev, token) => {
        const urls = dev.nodes.map((n) => n.url);
        const honest = engine === 'pbft' && LIAR ? urls.slice(0, 3) : urls;
        const plain = await sequential(async (i) => {
          const r = await call(honest[Math.abs(i) % 3]!, 'PUT', `/v1/kv/seq`, { body: VALUE, token, timeoutMs: 10_000 }).catch(() => undefined);
          return r?.status === 200;
        });
        let certified = '';
        if (engine === 'pbft') {
          const client = PbftClient.fromConfig(dev.nodes[0]!.configFile, urls, { token, timeoutMs: 10_000 });
          const c = await sequential(async () => client.put('cert', VALUE).then((r) => r.status === 200, () => false));
          certified = `; f + 1 client p50 ${f1(c.p50)} ms p99 ${f1(c.p99)} ms${c.failed ? ` (${c.failed} failed)` : ''}`;
          // Locks through the f + 1 client: acquire then release (each one PBFT round at the agreed time; clock reports run while the lock is held).
          const l = await sequential(async (i) => {
            const a = await client.lockAcquire('bench', `b${i}`, 10_000).catch(() => undefined);
            if (a?.status !== 200) return false;
            return (await client.lockRelease('bench', a.lease).catch(() => undefined))?.status === 200;
          });
          certified += `; f + 1 lock acquire+release p50 ${f1(l.p50)} ms p99 ${f1(l.p99)} ms${l.failed ? ` (${l.failed} failed)` : ''}`;
        }
        const par = await parallel(honest, token);
        console.log(
          `round ${round} ${engine.padEnd(4)} load ${before} → ${load()}: sequential one-node p50 ${f1(plain.p50)} ms p99 ${f1(plain.p99)} ms${plain.failed ? ` (${plain.failed} failed)` : ''}${certified}; 8 clients ${f1(par.perSec)} writes/s${par.failed ? ` (${par.failed} failed)` : ''}`,
        );
      });
    } catch (e) {
      console.log(`round ${round} ${engine}: ${(e as Error).message}`);
    }
  }
}
