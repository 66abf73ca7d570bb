/**
 * `quorumd dev --link tcp`: the nodes elect and replicate over the direct TCP link
 * (hal/tcp/link.ts) on 127.0.0.1; the embedded broker beside it carries presence and
 * wills only (mqtt.frames: fallback), so a SIGKILLed leader is replaced on its will.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { devTcpPort, startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { devToken, killLeaderRound, waitSettled } from './e2e/dev-failover.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
});

describe('quorumd dev --link tcp', () => {
  it('replicates writes between node processes over direct TCP links', async () => {
    let printed = '';
    const base = await freeBasePort(10 + 3); // HTTP base+1..3, TCP base+11..13
    dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, link: 'tcp', handleSignals: false, out: (s) => (printed += s), progress: () => {} });
    expect(printed).toContain(`tcp: the nodes talk directly (n1 on 127.0.0.1:${devTcpPort(base, 1)}`);
    const cfg = readFileSync(dev.nodes[0]!.configFile, 'utf8');
    expect(cfg).toMatch(/^tcp:/m);
    expect(cfg).toMatch(/^mqtt:.*\n(?: .*\n)*  frames: fallback\n/m);
    delete process.env.QUORUMD_API_TOKEN_FILE;
    process.env.QUORUMD_DATA_DIR = dev.dir;
    // A 503 (an election on a loaded machine) is retried, bounded.
    let put = await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/over-tcp', { body: 'yes' });
    for (let i = 0; i < 20 && put.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 500));
      put = await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/over-tcp', { body: 'yes' });
    }
    expect(put.status).toBe(200);
    // Each node's own copy (?stale reads locally): the entry reached every follower over TCP.
    for (const n of dev.nodes) {
      let g = await call(n.url, 'GET', '/v1/kv/over-tcp?stale');
      for (let i = 0; i < 100 && g.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        g = await call(n.url, 'GET', '/v1/kv/over-tcp?stale');
      }
      expect(g.status, n.name).toBe(200);
      expect(g.body.toString()).toBe('yes');
    }
    const st = JSON.parse((await call(dev.nodes[2]!.url, 'GET', '/v1/status')).body.toString()) as { links: Array<{ name: string }> };
    expect(st.links.map((l) => l.name)).toEqual(['mqtt', `tcp:127.0.0.1:${devTcpPort(base, 3)}`]);
    // mqtt.frames: fallback — while TCP is up no frame also goes through the broker: no
    // second copy for the replay window to drop (with `always` every heartbeat makes one).
    for (const n of dev.nodes) {
      const m = (await call(n.url, 'GET', '/metrics')).body.toString();
      expect(/^quorumd_dropped_frames_total\{reason="replay"\} (\d+)$/m.exec(m)?.[1] ?? '0', n.name).toBe('0');
    }

    // SIGKILL the leader: its kernel closes its TCP connections at once, the broker then
    // publishes its will, and the survivors campaign on it (the 'peer gone' line) instead
    // of waiting out the election timeout (1–2 s in dev). Before the runtime asked the
    // TCP link whether it still reaches the peer, that will was ignored.
    const token = devToken(dev);
    expect(await waitSettled(dev, token, 30_000)).not.toBeNull();
    const r = await killLeaderRound(dev, token, 1, 20_000);
    expect(r.writeMs, JSON.stringify(r)).toBeGreaterThan(0);
    const killedId = Number(r.killed.slice(1));
    const newLeader = dev.nodes.find((n) => n.name === r.newLeader);
    expect(newLeader, JSON.stringify(r)).toBeDefined();
    expect(newLeader).not.toBe(dev.nodes.find((n) => n.name === r.killed));
    // Bounded poll for the log line (the node writes its log asynchronously).
    let logText = '';
    for (let i = 0; i < 100; i++) {
      logText = readFileSync(newLeader!.logFile, 'utf8');
      if (logText.includes('"msg":"peer gone"')) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const gone = logText.split('\n').filter((l) => l.includes('"msg":"peer gone"')).map((l) => JSON.parse(l) as { peer: number; leader: number });
    expect(gone.some((g) => g.peer === killedId && g.leader === killedId), logText.slice(-3000)).toBe(true);
    // A generous bound that the election-timeout path (≥ 1 s, then a vote and a write) would not meet on an idle machine;
    // the log line above is the check that holds on a busy one.
    expect(r.writeMs).toBeLessThan(10_000);
    const dir = dev.dir;
    await dev.stop();
    dev = undefined;
    expect(existsSync(dir)).toBe(false);
  }, 90_000);
});
