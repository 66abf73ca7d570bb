/**
 * The HTTP connection limits on a real node process: three `quorumd start` nodes
 * (test/daemon/e2e/proc-cluster.ts); n1 is filled with idle connections from
 * 127.0.0.1 up to `http.maxConnectionsPerAddress` (default 128), one more must be
 * closed at accept while n2 and n3 keep answering, and once they are released n1
 * answers again. Then n1 is restarted with a per-address limit above the server's
 * total (1024) and filled past that total: the excess must be closed, the node must
 * stay up and answer once they are gone. Printed: held/refused counts, the refused
 * counter from /metrics, and whether each check held; exits 1 if one did not.
 *
 *   npx tsx bench/conn-limits.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { loadavg } from 'node:os';
import { call } from '../daemon/client/http.ts';
import { ProcCluster, type ProcNode } from '../test/daemon/e2e/proc-cluster.ts';
import { removeTestTokenDir } from '../test/helpers/auth.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens `n` connections; resolves with the sockets once each is connected or failed. */
async function open(port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    socks.push(s);
  }
  await Promise.all(socks.map((s) => new Promise<void>((r) => (s.connecting ? s.once('connect', () => r()).once('error', () => r()) : r()))));
  return socks;
}

/** How many of `socks` are still open after `ms` (the server closes refused ones at accept). */
async function alive(socks: net.Socket[], ms: number): Promise<number> {
  await sleep(ms);
  return socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
}

async function refused(node: ProcNode): Promise<number> {
  const r = await call(node.url, 'GET', '/metrics', { timeoutMs: 5000 });
  const m = /^quorumd_http_connections_refused_total (\d+)/m.exec(r.body.toString());
  return m ? Number(m[1]) : -1;
}

async function answers(node: ProcNode): Promise<number | string> {
  return call(node.url, 'GET', '/v1/status', { timeoutMs: 3000 }).then(
    (r) => r.status,
    (e: Error) => e.message.slice(0, 60),
  );
}

async function main(): Promise<void> {
  const c = await ProcCluster.start(3);
  let failed = 0;
  const check = (what: string, ok: boolean, detail: string) => {
    if (!ok) failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`);
  };
  try {
    await c.waitLeader(60_000);
    const n1 = c.nodes[0]!;
    const port = Number(new URL(n1.url).port);
    const r0 = await refused(n1);
    // Our client's keep-alive pool may hold a connection to n1: count it in.
    const pool = 1;
    const held = await open(port, 128 - pool);
    const extra = await open(port, 3);
    const heldAlive = await alive(held, 1000);
    const extraAlive = await alive(extra, 0);
    const others = [await answers(c.nodes[1]!), await answers(c.nodes[2]!)];
    const r1 = await refused(c.nodes[1]!).catch(() => -1);
    check('128 per address', heldAlive === held.length && extraAlive === 0, `held ${heldAlive}/${held.length}, over the limit still open ${extraAlive}/3, n2/n3 answer ${others.join('/')} (n2 refused ${r1})`);
    check('others keep being served', others.every((s) => s === 200), `n2/n3 ${others.join('/')}`);
    for (const s of [...held, ...extra]) s.destroy();
    let back: number | string = 0;
    for (let i = 0; i < 50 && back !== 200; i++) {
      await sleep(100);
      back = await answers(n1);
    }
    const r2 = await refused(n1);
    check('n1 answers after release', back === 200, `status ${back}, refused counter ${r0} -> ${r2}`);

    // The server's total: per address above it, so that one address can reach it.
    c.kill(n1, 'SIGTERM');
    await c.waitFor(async () => n1.child === undefined, 15_000, 'n1 stopped');
    writeFileSync(n1.config, readFileSync(n1.config, 'utf8').replace(/^http:\n/m, 'http:\n  maxConnectionsPerAddress: 4000\n'), { mode: 0o600 });
    c.spawn(n1);
    await c.waitFor(async () => (await answers(n1)) === 200, 60_000, 'n1 back');
    const rt0 = await refused(n1);
    const many = await open(port, 1100);
    const manyAlive = await alive(many, 2000);
    const otherDuring = [await answers(c.nodes[1]!), await answers(c.nodes[2]!)];
    for (const s of many) s.destroy();
    let back2: number | string = 0;
    for (let i = 0; i < 100 && back2 !== 200; i++) {
      await sleep(100);
      back2 = await answers(n1);
    }
    const rt1 = await refused(n1);
    check('1024 in all', manyAlive <= 1024 && manyAlive >= 1000 && n1.child !== undefined, `of 1100 held ${manyAlive}, n1 running ${n1.child !== undefined}, refused ${rt0} -> ${rt1}`);
    check('n1 answers after the flood', back2 === 200, `status ${back2}; n2/n3 during ${otherDuring.join('/')}`);
    console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await c.stop();
    removeTestTokenDir();
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
