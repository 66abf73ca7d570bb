/**
 * Requests in flight at a planned stop: a stream of KV writes through one node, over
 * keep-alive connections, while that node gets SIGTERM (a rolling upgrade, `systemctl
 * restart quorumd`). Every request must end in an answer (status and body) or be refused
 * before it was sent (ECONNREFUSED); none may lose its connection without an answer
 * (ECONNRESET, "socket hang up"), since a client then cannot tell whether the write
 * happened. Every 2xx-acknowledged write must be on the other nodes.
 *
 *   node --import tsx bench/sigterm-drain.ts [rounds=30] [target=both|leader|follower] [writers=4] [client=http|fetch]
 *
 * client=http: node:http with a keep-alive Agent; fetch: Node's fetch (undici, keep-alive
 * by default; a lost connection is its UND_ERR_SOCKET).
 *
 * Real processes: a `quorumd broker` and three `quorumd start` (test/daemon/e2e/proc-cluster.ts).
 * Each round stops the target, counts, checks the survivors, and starts it again.
 */
import { Agent, request } from 'node:http';
import { ProcCluster, type ProcNode } from '../test/daemon/e2e/proc-cluster.ts';
import { testToken } from '../test/helpers/auth.ts';

const rounds = Number(process.argv[2] ?? 30);
const mode = process.argv[3] ?? 'both';
const writers = Number(process.argv[4] ?? 4);
const client = process.argv[5] ?? 'http';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Outcome = { kind: 'answered'; status: number; body: string } | { kind: 'refused' } | { kind: 'dropped'; code: string };

function put(agent: Agent, url: string, path: string, body: string, token: string): Promise<Outcome> {
  const u = new URL(path, url);
  return new Promise((resolve) => {
    let sent = false;
    const req = request(u, { method: 'PUT', agent, headers: { Authorization: `Bearer ${token}`, 'Content-Length': Buffer.byteLength(body) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ kind: 'answered', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: 'dropped', code: `body: ${e.code ?? e.message}` }));
    });
    req.on('socket', (s) => {
      if (s.connecting) s.once('connect', () => (sent = true));
      else sent = true; // a kept-alive connection: the request goes out on it
    });
    req.on('finish', () => (sent = true));
    req.on('timeout', () => req.destroy(new Error('client timeout 30 s')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' && !sent) resolve({ kind: 'refused' });
      else resolve({ kind: 'dropped', code: e.code ?? e.message });
    });
    req.end(body);
  });
}

async function putFetch(url: string, path: string, body: string, token: string): Promise<Outcome> {
  try {
    const r = await fetch(new URL(path, url), { method: 'PUT', body, headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
    return { kind: 'answered', status: r.status, body: await r.text() };
  } catch (e) {
    const code = ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message);
    // undici refuses at connect before it writes a byte of the request.
    return code === 'ECONNREFUSED' ? { kind: 'refused' } : { kind: 'dropped', code };
  }
}

async function get(url: string, key: string, token: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const o = await new Promise<Outcome>((resolve) => {
      const req = request(new URL(`/v1/kv/${key}`, url), { headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ kind: 'answered', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: 'dropped', code: e.code ?? '' }));
      req.end();
    });
    if (o.kind === 'answered' && (o.status === 200 || o.status === 404)) return o.status;
    await sleep(200);
  }
  return 0;
}

async function main(): Promise<void> {
  const token = testToken();
  const c = await ProcCluster.start(3);
  const totals = { exitMs: [] as number[], answered: 0, refused: 0, dropped: 0, droppedApplied: 0, ackedMissing: 0, byStatus: new Map<number, number>() };
  try {
    let leader = await c.waitLeader(60_000);
    for (let round = 0; round < rounds; round++) {
      const wantLeader = mode === 'leader' || (mode === 'both' && round % 2 === 0);
      const target: ProcNode = wantLeader ? leader : c.nodes.find((n) => n !== leader && n.child)!;
      const agent = new Agent({ keepAlive: true, maxSockets: writers });
      const outcomes: Array<{ key: string; o: Outcome }> = [];
      let stop = false;
      const loops = Array.from({ length: writers }, async (_, w) => {
        for (let seq = 0; !stop && seq < 100_000; seq++) {
          const key = `drain/r${round}/w${w}/${seq}`;
          const o = client === 'fetch' ? await putFetch(target.url, `/v1/kv/${key}`, String(seq), token) : await put(agent, target.url, `/v1/kv/${key}`, String(seq), token);
          outcomes.push({ key, o });
          if (o.kind === 'refused') break; // the node is gone: a client would go elsewhere
        }
      });
      await sleep(300 + Math.floor(Math.random() * 200));
      const exited = new Promise<void>((r) => target.child!.once('exit', () => r()));
      const tSig = performance.now();
      c.kill(target, 'SIGTERM');
      await exited;
      const exitMs = performance.now() - tSig;
      totals.exitMs.push(exitMs);
      await sleep(200);
      stop = true;
      await Promise.all(loops);
      agent.destroy();
      const survivor = c.nodes.find((n) => n !== target && n.child)!;
      let answered = 0;
      let refused = 0;
      let dropped = 0;
      const drops: string[] = [];
      for (const { key, o } of outcomes) {
        if (o.kind === 'answered') {
          answered++;
          totals.byStatus.set(o.status, (totals.byStatus.get(o.status) ?? 0) + 1);
          if (o.status === 200 && (await get(survivor.url, key, token)) !== 200) {
            totals.ackedMissing++;
            console.log(`  acked but missing on ${survivor.name}: ${key}`);
          }
        } else if (o.kind === 'refused') refused++;
        else {
          dropped++;
          const applied = (await get(survivor.url, key, token)) === 200;
          if (applied) totals.droppedApplied++;
          drops.push(`${key} ${o.code}${applied ? ' (applied!)' : ''}`);
        }
      }
      totals.answered += answered;
      totals.refused += refused;
      totals.dropped += dropped;
      console.log(`round ${round} target ${target.name} (${wantLeader ? 'leader' : 'follower'}): exit ${exitMs.toFixed(0)} ms after SIGTERM, ${outcomes.length} requests, ${answered} answered, ${refused} refused, ${dropped} dropped${drops.length ? `: ${drops.join(', ')}` : ''}`);
      c.spawn(target);
      leader = await c.waitLeader(60_000);
    }
  } finally {
    await c.stop();
  }
  console.log(`TOTAL ${rounds} rounds (${mode}, ${writers} writers, ${client}): answered ${totals.answered} (${[...totals.byStatus].map(([s, n]) => `${s}:${n}`).join(' ')}), refused ${totals.refused}, dropped without answer ${totals.dropped} (applied: ${totals.droppedApplied}), acked but missing ${totals.ackedMissing}; SIGTERM to exit ms: ${totals.exitMs.map((x) => x.toFixed(0)).join(' ')}`);
}

await main();
