/**
 * A node that stands still (SIGSTOP) just after its planned stop began, with a burst
 * of connections queued in its listener: one `quorumd start` (a one-member cluster, so
 * it leads at once) and a `quorumd broker`, real processes. Per try:
 *   1. SIGSTOP the node; open `conns` connections, each sending one PUT (the kernel
 *      completes them and queues them in the node's listen backlog);
 *   2. SIGTERM, SIGCONT; `afterMs` later SIGSTOP again for 2.5 s (the stop has begun,
 *      the queued connections are being accepted), then SIGCONT;
 *   3. count how each connection ended: answered (503: the stop had begun), or reset.
 * Before the draining listener counted only the time the process ran, a try whose
 * second stop fell after the stop began reset nearly all of them (95 and 97 of 100,
 * afterMs 20, on a machine with a load of 18); every request must be answered.
 * Numbers only: it never passes or fails.
 *
 *   npx tsx bench/sigstop-drain.ts [tries=5] [afterMs=20] [conns=100]
 */
import * as net from 'node:net';
import { loadavg } from 'node:os';
import { ProcCluster } from '../test/daemon/e2e/proc-cluster.ts';
import { testToken } from '../test/helpers/auth.ts';

const tries = Number(process.argv[2] ?? 5);
const afterMs = Number(process.argv[3] ?? 20);
const conns = Number(process.argv[4] ?? 100);
if (!Number.isInteger(tries) || tries < 1 || tries > 100) throw new Error(`tries: expected an integer 1..100, got ${process.argv[2]}`);
if (!Number.isFinite(afterMs) || afterMs < 0 || afterMs > 10_000) throw new Error(`afterMs: expected 0..10000, got ${process.argv[3]}`);
if (!Number.isInteger(conns) || conns < 1 || conns > 120) throw new Error(`conns: expected an integer 1..120 (the node's connections per address: 128), got ${process.argv[4]}`);

const TOKEN = testToken();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (let t = 1; t <= tries; t++) {
  const c = await ProcCluster.start(1);
  try {
    const l = await c.waitLeader(60_000);
    const port = Number(new URL(l.url).port);
    const child = l.child!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGSTOP');
    const outs: Array<Promise<string>> = [];
    for (let i = 0; i < conns; i++) {
      outs.push(
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(`PUT /v1/kv/burst${i} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1\r\n\r\nv`));
          let buf = '';
          s.setTimeout(60_000, () => s.destroy(new Error('no answer within 60 s')));
          s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
          s.once('close', () => resolve(buf ? `answered ${buf.split(' ')[1]}` : 'closed without an answer'));
        }),
      );
    }
    await sleep(300);
    child.kill('SIGTERM');
    child.kill('SIGCONT');
    await sleep(afterMs);
    child.kill('SIGSTOP');
    await sleep(2500);
    child.kill('SIGCONT');
    const got = await Promise.all(outs);
    const tally: Record<string, number> = {};
    for (const g of got) tally[g] = (tally[g] ?? 0) + 1;
    await Promise.race([exited, sleep(30_000)]);
    console.log(JSON.stringify({ try: t, afterMs, load: loadavg()[0]!.toFixed(1), tally }));
  } finally {
    await c.stop();
  }
}
