/**
 * A soak of real processes under load, pauses and restarts, checked for
 * linearizability: one `quorumd broker` and three `quorumd start` nodes (four for
 * pbft; mqtt or tcp links, test/daemon/e2e/proc-cluster.ts), busy-loop processes beside
 * them, and per round
 *   - a Jepsen-style workload (daemon/client/workload.ts) of `clients` clients on the
 *     round's own keys (many keys, bounded ops: each key's history stays small enough
 *     for src/lin's checker),
 *   - one fault, in turn: SIGSTOP/SIGCONT of the leader or a follower (200 ms - 3 s,
 *     drawn), SIGKILL and restart of the leader or a follower, a broker restart, a
 *     follower paused while the leader keeps appending to it (Raft's coalesced acks),
 *     both followers' disks slowed (every fsync delayed 0.5-2 s by strace for 3 s, an SD
 *     card's garbage collection: the leader must stay leader; skipped without strace),
 *     a planned stop: SIGTERM of the leader or a follower (as `systemctl restart` or an
 *     upgrade does), which must exit 0 within TERM_EXIT_MS, then a restart, after
 *     which the node must be back, agreeing on the leader,
 *   - on a paused leader, also a burst of raw-socket PUTs, some of whose clients hang up
 *     at once: each one still connected must get exactly one answer (200, 503 or 504,
 *     docs/api.md), nothing more on its socket, within the backstop and slack,
 *   - then a quiet read of every key through every node; the round's history with those
 *     reads must be linearizable, so every acknowledged write is there at the end.
 * Printed per round: the fault, op counts, burst answers, the checker's verdict. It
 * exits 1 if any round failed a check (the logs are then kept and named).
 *
 *   [FAULTS=f1,f2] npx tsx bench/chaos-soak.ts [mqtt|tcp] [rounds] [secondsPerRound] [clients] [busyLoops] [raft|paxos|zab|pbft]
 *
 * The last argument is the engine (default raft): Multi-Paxos and ZAB run on the
 * engine runtime and owe clients the same answers (docs/api.md). pbft runs four nodes
 * (n = 3f + 1, f = 1), all honest: each node's plain HTTP answer is then true, so the
 * same workload and checker apply (the "leader" is the view's primary; a stopped or
 * killed primary is replaced by a view change, after viewChangeTimeoutMs, 4 s).
 * A SIGTERMed leader also takes a burst just before the signal: requests in flight at a
 * planned stop must be answered (or refused with 503) once each, like those at a pause.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { loadavg } from 'node:os';
import { checkLinearizable, type HistoryOp } from '../src/lin/index.ts';
import { Rng } from '../src/rng.ts';
import { call } from '../daemon/client/http.ts';
import { historyToJsonLines, runWorkload } from '../daemon/client/workload.ts';
import { ProcCluster, type ProcNode } from '../test/daemon/e2e/proc-cluster.ts';
import { removeTestTokenDir, testToken } from '../test/helpers/auth.ts';

const linkArg = process.argv[2] ?? 'mqtt';
const rounds = Number(process.argv[3] ?? 12);
const seconds = Number(process.argv[4] ?? 8);
const clients = Number(process.argv[5] ?? 32);
const busy = Number(process.argv[6] ?? 4);
const engine = process.argv[7] ?? 'raft';
if (linkArg !== 'mqtt' && linkArg !== 'tcp') throw new Error(`link: expected mqtt or tcp, got ${linkArg}`);
const link: 'mqtt' | 'tcp' = linkArg;
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 500) throw new Error(`rounds: expected 1..500, got ${process.argv[3]}`);
if (!Number.isFinite(seconds) || seconds < 2 || seconds > 120) throw new Error(`secondsPerRound: expected 2..120, got ${process.argv[4]}`);
if (!Number.isInteger(clients) || clients < 1 || clients > 256) throw new Error(`clients: expected 1..256, got ${process.argv[5]}`);
if (!Number.isInteger(busy) || busy < 0 || busy > 16) throw new Error(`busyLoops: expected 0..16, got ${process.argv[6]}`);
if (engine !== 'raft' && engine !== 'paxos' && engine !== 'zab' && engine !== 'pbft') throw new Error(`engine: expected raft, paxos, zab or pbft, got ${engine}`);
/** pbft: n = 3f + 1 with f = 1; the others: three voters. */
const NODES = engine === 'pbft' ? 4 : 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Keys per round: many, so that each key's history stays small (and holds few
 * unknown-outcome ops, which multiply the checker's search) even with 32 clients.
 */
const KEYS = 128;
const BURST = 64;
const BURST_HANGUPS = 8;
/** The bursts' source address (any of 127.0.0.0/8 reaches the node on 127.0.0.1). */
const BURST_SOURCE = '127.0.0.2';
/** The server's backstop (10 s) plus generous slack for a loaded 2-core machine. */
const BURST_WAIT_MS = 30_000;

/**
 * The last two outlast the HTTP backstop (10 s): the burst's calls are in flight on
 * the leader while both followers are stopped (no quorum: each must end once, as a
 * 504 from the step-down or the backstop), and in the last the leader itself stops
 * too with those calls in flight (its backstop timer is overdue at SIGCONT: every
 * call still ends exactly once).
 */
const faults = ['stop-leader', 'stop-follower', 'kill-leader', 'kill-follower', 'broker-restart', 'stop-follower-long', 'stop-quorum', 'stop-leader-inflight', 'slow-disk-followers', 'term-leader', 'term-follower'] as const;
/**
 * A SIGTERMed node must have exited by then: a leader's hand-over is bounded by
 * max(1 s, 2 x the election timeout's maximum) (daemon/start.ts), the HTTP close and
 * the hooks' stop follow; the rest is slack for a loaded 2-core machine.
 */
const TERM_EXIT_MS = 15_000;
/** FAULTS=a,b (env): only these faults, in turn (all by default). */
const only: readonly Fault[] = process.env.FAULTS ? process.env.FAULTS.split(',').map((f) => {
  if (!(faults as readonly string[]).includes(f)) throw new Error(`FAULTS: expected a comma-separated list of ${faults.join(', ')}; got ${f}`);
  return f as Fault;
}) : faults;
const LONG_STOP_MS = 12_000;
type Fault = (typeof faults)[number];

interface BurstResult {
  answers: Record<string, number>;
  duplicates: number;
  unanswered: number;
  /** How each unanswered call ended: closed by the node (and when), or still waiting at BURST_WAIT_MS. */
  unansweredHow: string[];
  hungUp: number;
  ops: HistoryOp[];
  /** The slowest answer, ms after the request was sent. */
  slowestMs: number;
}

/**
 * `BURST` PUTs on raw sockets to `node` (paused, typically), keys `prefix-p<i>`; the
 * first BURST_HANGUPS sockets are destroyed right after sending. Resolves once every
 * remaining socket has an answer and has stayed quiet 300 ms more, or BURST_WAIT_MS.
 */
function burst(node: ProcNode, prefix: string, token: string, started: () => void): Promise<BurstResult> {
  const u = new URL(node.url);
  const res: BurstResult = { answers: {}, duplicates: 0, unanswered: 0, unansweredHow: [], hungUp: 0, ops: [], slowestMs: 0 };
  const socks: Array<Promise<void>> = [];
  for (let i = 0; i < BURST; i++) {
    const key = `${prefix}-p${i}`;
    const value = `burst-${prefix}-${i}`;
    const body = JSON.stringify(value);
    socks.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        let buf = '';
        let done = false;
        let statuses: number[] = [];
        // From a loopback address of its own: the node holds at most 128 connections per
        // client address and destroys more at accept (docs/security.md), and the workload's
        // abandoned calls keep theirs open until answered (a client's FIN may be a
        // half-close), so after a stopped round they could leave too few for the burst.
        const s = net.connect({ port: Number(u.port), host: '127.0.0.1', localAddress: BURST_SOURCE });
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          s.destroy();
          if (i < BURST_HANGUPS) {
            res.hungUp++;
            res.ops.push({ client: 5000 + i, op: 'put', key, value, call: t0, ret: null });
          } else if (statuses.length === 0) {
            res.unanswered++;
            res.unansweredHow.push(ended === '' ? `no answer in ${BURST_WAIT_MS} ms` : `${ended} after ${(performance.now() - t0).toFixed(0)} ms`);
            res.ops.push({ client: 5000 + i, op: 'put', key, value, call: t0, ret: null });
          } else {
            const st = statuses[0]!;
            res.answers[st] = (res.answers[st] ?? 0) + 1;
            if (statuses.length > 1) res.duplicates++;
            res.slowestMs = Math.max(res.slowestMs, retAt - t0);
            if (st === 200) res.ops.push({ client: 5000 + i, op: 'put', key, value, call: t0, ret: retAt });
            else if (st !== 503) res.ops.push({ client: 5000 + i, op: 'put', key, value, call: t0, ret: null });
          }
          resolve();
        };
        let retAt = 0;
        /** Why the socket ended, if the node ended it. */
        let ended = '';
        let quiet: ReturnType<typeof setTimeout> | undefined;
        const timer = setTimeout(finish, BURST_WAIT_MS);
        s.on('connect', () => {
          s.write(`PUT /v1/kv/${encodeURIComponent(key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
          if (i < BURST_HANGUPS) setImmediate(finish);
        });
        s.on('data', (d) => {
          buf += d.toString('latin1');
          // Count status lines; each answer is one (keep-alive: a second would be a duplicate).
          const m = buf.match(/HTTP\/1\.1 (\d{3}) /g) ?? [];
          const before = statuses.length;
          statuses = m.map((x) => Number(x.slice(9, 12)));
          if (statuses.length > before && before === 0) retAt = performance.now();
          clearTimeout(quiet);
          quiet = setTimeout(finish, 300);
        });
        s.on('error', (e) => {
          ended ||= `error ${e.message}`;
          finish();
        });
        s.on('close', () => {
          ended ||= 'closed by the node';
          finish();
        });
      }),
    );
  }
  started();
  return Promise.all(socks).then(() => res);
}

async function finals(c: ProcCluster, keys: string[]): Promise<{ ops: HistoryOp[]; bad: string[] }> {
  const ops: HistoryOp[] = [];
  const bad: string[] = [];
  for (const node of c.nodes) {
    if (!node.child) {
      bad.push(`${node.name}: not running`);
      continue;
    }
    for (const key of keys) {
      const t = performance.now();
      let r;
      let why = '';
      for (let a = 0; a < 20; a++) {
        try {
          r = await call(node.url, 'GET', `/v1/kv/${encodeURIComponent(key)}`, { timeoutMs: 3000 });
          if (r.status === 200 || r.status === 404) break;
          why = `${r.status} ${r.body.toString().slice(0, 120)}`;
        } catch (e) {
          r = undefined;
          why = (e as Error).message.slice(0, 120);
        }
        if (a === 0) console.log(`  final read ${node.name} ${key} failed (${why}); status: ${await statusLine(c)}`);
        await sleep(250);
      }
      if (!r || (r.status !== 200 && r.status !== 404)) {
        bad.push(`${node.name} ${key}: ${why} after ${(performance.now() - t).toFixed(0)} ms; status: ${await statusLine(c)}`);
        continue;
      }
      ops.push({ client: 1000, op: 'get', key, output: r.status === 200 ? (JSON.parse(r.body.toString()) as string) : null, call: t, ret: performance.now() });
    }
  }
  return { ops, bad };
}

/** Every node's role, commit and applied index (or why not), for a failure's context. */
async function statusLine(c: ProcCluster): Promise<string> {
  const parts = await Promise.all(
    c.nodes.map(async (n) => {
      try {
        const r = await call(n.url, 'GET', '/v1/status', { timeoutMs: 2000 });
        const j = JSON.parse(r.body.toString()) as { role: string; term: number; commitIndex: number; appliedIndex: number; peers?: Array<{ name?: string; match?: number }> };
        return `${n.name}:${j.role} t${j.term} c${j.commitIndex} a${j.appliedIndex}${j.peers ? ` [${j.peers.map((p) => `${p.name}:m${p.match ?? '-'}`).join(',')}]` : ''}`;
      } catch (e) {
        return `${n.name}:${(e as Error).message.slice(0, 40)}`;
      }
    }),
  );
  return parts.join(' ');
}

/** A node's count of connections destroyed at accept (over its per-address or total limit); NaN if it does not answer. */
async function refusedAtAccept(node: ProcNode, token: string): Promise<number> {
  try {
    const r = await call(node.url, 'GET', '/metrics', { timeoutMs: 2000, token });
    const m = /^quorumd_http_connections_refused_total (\d+)$/m.exec(r.body.toString());
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function role(c: ProcCluster, name: string): Promise<string> {
  const n = c.nodes.find((x) => x.name === name)!;
  try {
    const r = await call(n.url, 'GET', '/v1/status', { timeoutMs: 1000 });
    return (JSON.parse(r.body.toString()) as { role: string }).role;
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  const token = testToken();
  const busyKids: ChildProcess[] = [];
  const budgetMs = rounds * (seconds + 40) * 1000 + 120_000;
  for (let b = 0; b < busy; b++) {
    // Each busy loop ends by itself too, should this process die without stopping it.
    busyKids.push(spawn(process.execPath, ['-e', `const e=Date.now()+${budgetMs};while(Date.now()<e){}`], { stdio: 'ignore' }));
  }
  // The generated config names no engine for raft (its default); the others are added.
  const c = await ProcCluster.start(NODES, engine === 'raft' ? '' : `engine: ${engine}\n`, () => '', link);
  const rng = new Rng(Number(process.env.SEED ?? 20261204));
  const draw = (lo: number, hi: number) => Math.round(lo + rng.float() * (hi - lo));
  let failed = 0;
  const totals = { ops: 0, acked: 0, unknown: 0, burstAnswered: 0, burstDup: 0, burstUnanswered: 0, faults: {} as Record<string, number> };
  const cpu0 = process.cpuUsage();
  console.log(`chaos-soak: engine ${engine}, link ${link}, ${rounds} rounds x ${seconds} s, ${clients} clients, ${busy} busy loops, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  try {
    await c.waitLeader(60_000);
    for (let round = 1; round <= rounds; round++) {
      const fault: Fault = only[(round - 1) % only.length]!;
      totals.faults[fault] = (totals.faults[fault] ?? 0) + 1;
      const keys = Array.from({ length: KEYS }, (_, i) => `r${round}-k${i}`);
      /** Nodes that ended by themselves before this round (a fatal stop: exit code not 0, no signal). */
      const exits0 = c.failedExits.length;
      const t0 = performance.now();
      const work = runWorkload({ nodes: c.nodes.map((n) => n.url), keys, clients, until: t0 + seconds * 1000, timeoutMs: 1500, random: () => rng.float(), maxOpsPerClient: 400 });
      await sleep(draw(500, 1500));
      const leader = await c.waitLeader(30_000);
      const followers = c.nodes.filter((n) => n !== leader && n.child);
      const follower = followers[draw(0, followers.length - 1)]!;
      let detail = '';
      /** What the fault itself showed wrong (a leader change under slow disks, a planned stop that did not end well). */
      const faultProblems: string[] = [];
      let b: Promise<BurstResult> | undefined;
      // The leader takes the bursts: its refusals at accept before the fault (for the problem line).
      const refused0 = await refusedAtAccept(leader, token);
      if (fault === 'stop-leader' || fault === 'stop-follower' || fault === 'stop-follower-long') {
        const who = fault === 'stop-leader' ? leader : follower;
        const ms = fault === 'stop-follower-long' ? draw(2000, 3000) : draw(200, 3000);
        c.kill(who, 'SIGSTOP');
        if (fault === 'stop-leader') b = burst(who, `r${round}`, token, () => {});
        await sleep(ms);
        c.kill(who, 'SIGCONT');
        detail = `${who.name} (${who === leader ? 'leader' : 'follower'}) ${ms} ms`;
      } else if (fault === 'stop-quorum' || fault === 'stop-leader-inflight') {
        // Both followers stop first, so that the burst's calls stay in flight on the
        // leader (no quorum); for stop-leader-inflight the leader stops 1 s later too,
        // its backstop timer then overdue when it continues (before the followers do).
        const stopped = fault === 'stop-quorum' ? followers : [leader, ...followers];
        for (const f of followers) c.kill(f, 'SIGSTOP');
        b = burst(leader, `r${round}`, token, () => {});
        await sleep(1000);
        if (fault === 'stop-leader-inflight') c.kill(leader, 'SIGSTOP');
        await sleep(LONG_STOP_MS);
        for (const f of stopped) c.kill(f, 'SIGCONT');
        detail = `${stopped.map((f) => f.name).join('+')} stopped ${LONG_STOP_MS} ms`;
      } else if (fault === 'slow-disk-followers') {
        // Every fsync of both followers delayed (strace's syscall fault injection), the
        // workload going on: writes wait for the disks, but the followers still answer
        // heartbeats, so the leader must keep its quorum — no election.
        const ms = draw(500, 2000);
        const tracers = followers.map((f) => spawn('strace', ['-f', '-qq', '-p', String(f.child!.pid), '-e', 'trace=fdatasync,fsync', '-e', `inject=fdatasync,fsync:delay_enter=${ms * 1000}`, '-o', '/dev/null'], { stdio: 'ignore' }));
        const attached = await Promise.all(tracers.map((t) => new Promise<boolean>((r) => {
          t.once('error', () => r(false));
          t.once('exit', () => r(false));
          setTimeout(() => r(t.exitCode === null), 1000);
        })));
        await sleep(3000);
        for (const t of tracers) t.kill('SIGINT');
        await Promise.all(tracers.map((t) => (t.exitCode === null ? new Promise((r) => t.once('exit', r)) : undefined)));
        if (attached.every(Boolean)) {
          const after = await c.waitLeader(30_000);
          detail = `${followers.map((f) => f.name).join('+')} fsync +${ms} ms for 3 s; leader ${leader.name} -> ${after.name}`;
          // PBFT has no heartbeats to keep a primary: a backup whose request does not
          // execute within viewChangeTimeoutMs (4 s) complains, so slow backups may
          // change the view by design; only the heartbeat engines must keep the leader.
          if (after !== leader && engine !== 'pbft') faultProblems.push(`the leader changed (${leader.name} -> ${after.name}) while only the followers' disks were slow`);
        } else detail = 'skipped: strace is missing or may not attach here';
      } else if (fault === 'term-leader' || fault === 'term-follower') {
        // A planned stop (systemctl restart, an upgrade): SIGTERM, the node stops in order
        // (a Raft leader hands over first) and exits 0; then it starts again.
        const who = fault === 'term-leader' ? leader : follower;
        const child = who.child!;
        if (fault === 'term-leader') {
          b = burst(who, `r${round}`, token, () => {});
          await sleep(30); // the burst's requests on their way in (most in flight) when the signal comes
        }
        const exited = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
        const tTerm = performance.now();
        c.kill(who, 'SIGTERM');
        const inTime = await Promise.race([exited.then(() => true), sleep(TERM_EXIT_MS).then(() => false)]);
        const exitMs = performance.now() - tTerm;
        if (!inTime) {
          faultProblems.push(`${who.name} did not exit within ${TERM_EXIT_MS} ms of SIGTERM; killed`);
          c.kill(who, 'SIGKILL');
          await Promise.race([exited, sleep(10_000)]);
        } else if (child.exitCode !== 0) faultProblems.push(`${who.name} exited with ${child.exitCode ?? child.signalCode} after SIGTERM, not 0`);
        let successor = '';
        if (fault === 'term-leader') {
          // Who leads without it, and how long after the signal all the others agreed on it.
          const next = await c.waitLeader(60_000);
          successor = `; ${next.name} leads after ${(performance.now() - tTerm).toFixed(0)} ms`;
        }
        const ms = draw(300, 2000);
        await sleep(ms);
        const tStart = performance.now();
        c.spawn(who);
        // Back: it answers and agrees with every other node on the leader (bounded).
        await c.waitLeader(60_000);
        detail = `${who.name} (${who === leader ? 'leader' : 'follower'}) exited in ${exitMs.toFixed(0)} ms${successor}, down ${ms} ms, back in ${(performance.now() - tStart).toFixed(0)} ms`;
      } else if (fault === 'kill-leader' || fault === 'kill-follower') {
        const who = fault === 'kill-leader' ? leader : follower;
        c.kill(who, 'SIGKILL');
        const ms = draw(300, 2000);
        await sleep(ms);
        await c.waitFor(async () => who.child === undefined, 10_000, `${who.name} exited`);
        c.spawn(who);
        detail = `${who.name} (${who === leader ? 'leader' : 'follower'}) down ${ms} ms`;
      } else {
        await c.killBroker();
        const ms = draw(300, 2000);
        await sleep(ms);
        await c.startBroker();
        detail = `broker down ${ms} ms`;
      }
      const { history, counts } = await work;
      const br = b ? await b : undefined;
      // A node that stopped by itself (a fatal error) is a failure of the round; it is
      // started again so that the soak goes on (its log says why; kept at the end).
      for (const d of c.failedExits.slice(exits0)) {
        const n = c.nodes.find((x) => x.name === d.name)!;
        const fatal = c.logTail(n.name, 40).split('\n').filter((l) => /fatal|"level":(50|60)/i.test(l)).slice(-1)[0] ?? '(no fatal line in its log)';
        faultProblems.push(`${n.name} exited by itself with code ${d.code}: ${fatal.slice(0, 400)}`);
        if (!n.child) c.spawn(n);
      }
      await c.waitLeader(60_000);
      const allKeys = br ? [...keys, ...Array.from({ length: BURST }, (_, i) => `r${round}-p${i}`)] : keys;
      const fin = await finals(c, allKeys);
      const full = [...history, ...(br?.ops ?? []), ...fin.ops];
      let res = checkLinearizable(full);
      if (res.ok === 'unknown') {
        // Out of the default search budget (a key with many unknown outcomes): that key
        // alone again with a larger one, the history kept for a look.
        const key = res.key;
        writeFileSync(join(c.dir, `round${round}.jsonl`), historyToJsonLines(full));
        console.log(`  round ${round}: checker budget exceeded on ${key} (${full.filter((o) => o.key === key).length} ops, ${full.filter((o) => o.key === key && o.ret === null).length} unknown); again with 16M states; history in ${join(c.dir, `round${round}.jsonl`)}`);
        const again = checkLinearizable(full.filter((o) => o.key === key), { maxStates: 16_000_000 });
        if (again.ok === true) res = checkLinearizable(full.filter((o) => o.key !== key));
        else res = again;
      }
      const acked = history.filter((o) => (o.op === 'put' && o.ret !== null) || (o.op === 'cas' && o.output === 'ok')).length;
      const unknown = history.filter((o) => o.ret === null).length;
      totals.ops += history.length;
      totals.acked += acked;
      totals.unknown += unknown;
      const problems: string[] = [];
      if (res.ok !== true) problems.push(`NOT LINEARIZABLE: ${JSON.stringify(res).slice(0, 1500)}`);
      if (fin.bad.length > 0) problems.push(`final reads failed: ${fin.bad.slice(0, 5).join('; ')}`);
      problems.push(...faultProblems);
      if (br) {
        const answered = Object.values(br.answers).reduce((a, x) => a + x, 0);
        totals.burstAnswered += answered;
        totals.burstDup += br.duplicates;
        totals.burstUnanswered += br.unanswered;
        const okStatuses = Object.keys(br.answers).every((s) => s === '200' || s === '503' || s === '504');
        if (br.duplicates > 0 || br.unanswered > 0 || !okStatuses) {
          const how = br.unansweredHow.length > 0 ? ` (${[...new Set(br.unansweredHow)].join('; ')})` : '';
          problems.push(`burst: ${JSON.stringify(br.answers)} duplicates ${br.duplicates} unanswered ${br.unanswered}${how}; connections the leader refused at accept meanwhile: ${(await refusedAtAccept(leader, token)) - refused0}`);
        }
        detail += `; burst ${JSON.stringify(br.answers)} (+${br.hungUp} hung up, slowest ${br.slowestMs.toFixed(0)} ms)`;
      }
      const roles = (await Promise.all(c.nodes.map(async (n) => `${n.name}:${await role(c, n.name)}`))).join(' ');
      console.log(`round ${round} ${fault} [${detail}] ops ${history.length} acked ${acked} unknown ${unknown} ${JSON.stringify(counts)} -> ${res.ok === true ? 'linearizable' : 'FAIL'} (${roles}) load ${loadavg()[0]!.toFixed(2)}`);
      for (const p of problems) console.log(`  ${p}`);
      if (problems.length > 0) failed++;
    }
  } finally {
    for (const k of busyKids) k.kill('SIGKILL');
    // Errors the nodes logged (a second answer, an internal error) are worth a look.
    const suspicious: string[] = [];
    for (const n of c.nodes) {
      try {
        for (const line of readFileSync(n.log, 'utf8').split('\n')) if (/ERR_HTTP_HEADERS_SENT|internal error|uncaught|unhandled|FATAL/i.test(line)) suspicious.push(`${n.name}: ${line.slice(0, 200)}`);
      } catch {
        /* the log may not exist */
      }
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`totals: ${JSON.stringify(totals)}, failed rounds ${failed}, suspicious log lines ${suspicious.length}, client cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    for (const s of suspicious.slice(0, 20)) console.log(`  ${s}`);
    if (failed > 0 || suspicious.length > 0) {
      // The cluster's directory goes at exit (it holds the configs with the cluster key
      // inline): its logs and kept histories are copied out first.
      const kept = mkdtempSync(join(tmpdir(), 'quorumd-chaos-logs-'));
      for (const f of readdirSync(c.dir)) if (f.endsWith('.log') || f.endsWith('.jsonl')) copyFileSync(join(c.dir, f), join(kept, f));
      console.log(`logs kept in ${kept}`);
      await c.stop();
    } else await c.stop();
    removeTestTokenDir();
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
