/**
 * Leader kills on a `quorumd dev` cluster of real processes, shared by the engine
 * end-to-end test (engine-dev.test.ts) and bench/engine-failover.ts: SIGKILL the
 * leader's process, then write through the survivors until one write is acknowledged
 * (200), and report the time from the kill to that answer. Every wait is bounded.
 */
import { readFileSync } from 'node:fs';
import { call } from '../../../daemon/client/http.ts';
import type { DevCluster, DevNode } from '../../../daemon/dev.ts';

export interface KillRound {
  killed: string;
  /** Kill → the first acknowledged write through a survivor, ms (-1: none within the bound). */
  writeMs: number;
  /** The node that acknowledged it, and the leader the cluster named afterwards. */
  via: string;
  newLeader: string | null;
  key: string;
  value: string;
}

export function devToken(dev: DevCluster): string {
  return readFileSync(dev.tokenFile, 'utf8').trim();
}

async function leaderOf(dev: DevCluster, token: string, from: DevNode[]): Promise<string | null> {
  for (const n of from) {
    const r = await call(n.url, 'GET', '/v1/leader', { timeoutMs: 1000, token }).catch(() => undefined);
    if (r?.status === 200) {
      const l = (JSON.parse(r.body.toString()) as { leader: string | null }).leader;
      if (l !== null) return l;
    }
  }
  return null;
}

/** Until every node of the cluster runs and names the same leader (bounded by `boundMs`). */
export async function waitSettled(dev: DevCluster, token: string, boundMs = 20_000): Promise<string | null> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    const rs = await Promise.all(dev.nodes.map((n) => call(n.url, 'GET', '/v1/leader', { timeoutMs: 1000, token }).catch(() => undefined)));
    const names = rs.map((r) => (r?.status === 200 ? (JSON.parse(r.body.toString()) as { leader: string | null }).leader : null));
    if (names.every((x) => x !== null && x === names[0])) return names[0]!;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

/** One round: SIGKILL the leader, write through the survivors until acknowledged. Restarts nothing. */
export async function killLeaderRound(dev: DevCluster, token: string, round: number, boundMs = 20_000): Promise<KillRound> {
  const leaderName = await leaderOf(dev, token, dev.nodes);
  const leader = dev.nodes.find((n) => n.name === leaderName);
  if (!leader || !leader.child) throw new Error(`round ${round}: no leader process to kill (leader ${String(leaderName)})`);
  const survivors = dev.nodes.filter((n) => n !== leader);
  const key = `failover-${round}`;
  let attempt = 0;
  const t0 = performance.now();
  leader.child.kill('SIGKILL');
  const deadline = t0 + boundMs;
  let writeMs = -1;
  let via = '';
  let value = '';
  // One write at a time through each survivor (each with its own bound), a new one as
  // soon as the last answered, at most every 20 ms; the first 200 ends the round. (More
  // at once would meet the API's per-address connection limit, not the engine.)
  const inflight = new Set<Promise<void>>();
  const busy = new Set<string>();
  while (writeMs < 0 && performance.now() < deadline) {
    for (const n of survivors) {
      if (busy.has(n.name)) continue;
      busy.add(n.name);
      const v = `v${round}.${++attempt}`;
      const p: Promise<void> = call(n.url, 'PUT', `/v1/kv/${key}`, { body: v, timeoutMs: 3000, token })
        .then((r) => {
          if (r.status === 200 && writeMs < 0) {
            writeMs = performance.now() - t0;
            via = n.name;
            value = v;
          }
        }, () => {})
        .finally(() => {
          inflight.delete(p);
          busy.delete(n.name);
        });
      inflight.add(p);
    }
    await Promise.race([new Promise((r) => setTimeout(r, 20)), ...inflight]);
  }
  await Promise.all(inflight);
  const newLeader = await leaderOf(dev, token, survivors);
  return { killed: leader.name, writeMs, via, newLeader, key, value };
}

/** Starts the killed node again and waits (bounded) until the whole cluster agrees on a leader. */
export async function restartAndSettle(dev: DevCluster, token: string, name: string, boundMs = 20_000): Promise<string | null> {
  const node = dev.nodes.find((n) => n.name === name)!;
  // The killed child is forgotten on its 'exit' event; only then can it be started again.
  const exitBy = Date.now() + 5000;
  while (node.child && Date.now() < exitBy) await new Promise((r) => setTimeout(r, 20));
  dev.restart(name);
  return waitSettled(dev, token, boundMs);
}
