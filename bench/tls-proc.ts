/**
 * TLS end to end on real processes: certificates made by the openssl CLI in a temp
 * directory, `quorumd broker` serving mqtts, three `quorumd start` nodes reaching it
 * over mqtts (mqtt.tls.caFile) and serving their API over HTTPS (http.tls). node:tls
 * and node:https are loaded lazily (hal/lazy-builtins.ts), so this is the path that
 * shows a node configured with TLS still loads them when it needs them. Per round:
 * writes through the leader over HTTPS, then a fault in turn (leader SIGSTOP 1.5 s,
 * broker SIGKILL and restart, leader SIGKILL and restart); the round passes when every
 * acknowledged write reads back from every node afterwards. Prints per round; exits 1
 * on a failed round.
 *
 *   npx tsx bench/tls-proc.ts [rounds]
 */
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { call } from '../daemon/client/http.ts';
import { ProcCluster } from '../test/daemon/e2e/proc-cluster.ts';
import { makeCerts } from '../test/hal/mqtt/helpers.ts';
import { removeTestTokenDir } from '../test/helpers/auth.ts';
import { spawn } from 'node:child_process';
import { bin } from '../test/daemon/e2e/proc-cluster.ts';

const rounds = Number(process.argv[2] ?? 3);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error(`rounds: expected 1..100, got ${process.argv[2]}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const certs = makeCerts();
  process.env.QUORUMD_API_CA_FILE = join(certs.dir, 'ca.pem');
  writeFileSync(join(certs.dir, 'server.key'), certs.serverKey, { mode: 0o600 });
  // A plain cluster first, for its configs and data directory; then the nodes and the
  // broker are restarted with TLS (ProcCluster's broker is plain).
  const c = await ProcCluster.start(3);
  let failed = 0;
  try {
    await c.waitLeader(60_000);
    for (const n of c.nodes) c.kill(n, 'SIGTERM');
    await c.waitFor(async () => c.nodes.every((n) => n.child === undefined), 15_000, 'nodes stopped');
    await c.killBroker();
    for (const n of c.nodes) {
      const y = readFileSync(n.config, 'utf8')
        .replace(`mqtt://127.0.0.1:${c.brokerPort}`, `mqtts://127.0.0.1:${c.brokerPort}`)
        .replace(/^mqtt:\n/m, `mqtt:\n  tls:\n    caFile: ${JSON.stringify(join(certs.dir, 'ca.pem'))}\n`)
        .replace(/^http:\n/m, `http:\n  tls:\n    certFile: ${JSON.stringify(join(certs.dir, 'server.pem'))}\n    keyFile: ${JSON.stringify(join(certs.dir, 'server.key'))}\n`);
      writeFileSync(n.config, y, { mode: 0o600 });
      n.url = n.url.replace('http://', 'https://');
    }
    // The TLS broker, restartable on the same port.
    const startTlsBroker = async () => {
      const b = spawn(process.execPath, [bin, 'broker', '--port', String(c.brokerPort), '--cluster-key-file', c.keyFile, '--tls-cert', join(certs.dir, 'server.pem'), '--tls-key', join(certs.dir, 'server.key')], { stdio: 'ignore' });
      c.broker = b;
      await sleep(1500);
      if (b.exitCode !== null) throw new Error(`TLS broker exited ${b.exitCode}`);
    };
    await startTlsBroker();
    for (const n of c.nodes) c.spawn(n);
    await c.waitLeader(60_000);
    const acked = new Map<string, string>();
    for (let round = 1; round <= rounds; round++) {
      const fault = ['stop-leader', 'broker-restart', 'kill-leader'][(round - 1) % 3]!;
      const L = await c.waitLeader(60_000);
      for (let i = 0; i < 20; i++) {
        const k = `tls-r${round}-${i}`;
        const r = await call(L.url, 'PUT', `/v1/kv/${k}`, { body: JSON.stringify(k), timeoutMs: 5000 }).catch(() => undefined);
        if (r?.status === 200) acked.set(k, k);
      }
      if (fault === 'stop-leader') {
        c.kill(L, 'SIGSTOP');
        await sleep(1500);
        c.kill(L, 'SIGCONT');
      } else if (fault === 'broker-restart') {
        await c.killBroker();
        await sleep(1000);
        await startTlsBroker();
      } else {
        c.kill(L, 'SIGKILL');
        await c.waitFor(async () => L.child === undefined, 10_000, 'leader exited');
        c.spawn(L);
      }
      const L2 = await c.waitLeader(60_000);
      // A write after the fault, through the (possibly new) leader.
      const after = await call(L2.url, 'PUT', `/v1/kv/tls-after-${round}`, { body: '"x"', timeoutMs: 10_000 }).catch((e: Error) => ({ status: e.message }));
      let missing = 0;
      for (const n of c.nodes) {
        for (const [k, v] of acked) {
          const r = await call(n.url, 'GET', `/v1/kv/${k}`, { timeoutMs: 5000 }).catch(() => undefined);
          if (r?.status !== 200 || JSON.parse(r.body.toString()) !== v) missing++;
        }
      }
      const ok = missing === 0 && after.status === 200;
      if (!ok) failed++;
      console.log(`tls round ${round} ${fault}: leader ${L.name} -> ${L2.name}, acked so far ${acked.size}, write after ${after.status}, missing reads ${missing} -> ${ok ? 'ok' : 'FAIL'}, load ${loadavg()[0]!.toFixed(2)}`);
    }
  } finally {
    if (failed > 0) console.log(`logs in ${c.dir}`);
    await c.stop();
    certs.cleanup();
    removeTestTokenDir();
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
