/**
 * `quorumd dev --link tcp`: the nodes elect and replicate over the direct TCP link
 * (hal/tcp/link.ts) on 127.0.0.1, with no MQTT link configured at all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { devTcpPort, startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';

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
    expect(cfg).not.toMatch(/^mqtt:/m);
    expect(cfg).toMatch(/^tcp:/m);
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
    expect(st.links.map((l) => l.name)).toEqual([`tcp:127.0.0.1:${devTcpPort(base, 3)}`]);
    const dir = dev.dir;
    await dev.stop();
    dev = undefined;
    expect(existsSync(dir)).toBe(false);
  }, 90_000);
});
