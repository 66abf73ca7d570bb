/** The `tcp:` link section: accepted as documented; each mistake names its key. */
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { good, KEY, problems } from './helpers.ts';
import { parseConfigText, parseConfigWithPositions, resolveConfig } from '../../../daemon/config/load.ts';
import { devConfig, devTcpPort } from '../../../daemon/dev.ts';
import { startNode } from '../../../daemon/start.ts';
import { testTokenFile } from '../../helpers/auth.ts';
import { freePort } from '../../helpers/ports.ts';
import { until } from '../../engines/servers.ts';

const noMqtt = good.replace(/mqtt:[\s\S]*$/, '');
const tcp = (peers: string, extra = '') => `${noMqtt}tcp:\n  peers:\n${peers}${extra}`;
const three = '    - { id: 1, address: 10.0.0.1:7400 }\n    - { id: 2, address: 10.0.0.2:7400 }\n    - { id: 3, address: 10.0.0.3:7400 }\n';

describe('config tcp:', () => {
  it('is a link of its own, with the documented defaults', () => {
    const c = parseConfigText(tcp(three));
    expect(c.tcp).toEqual({ peers: [{ id: 1, address: '10.0.0.1:7400' }, { id: 2, address: '10.0.0.2:7400' }, { id: 3, address: '10.0.0.3:7400' }], maxFrame: 65536, helloTimeoutMs: 2000, maxPending: 16 });
    expect(parseConfigText(tcp(three, '  listen: 0.0.0.0:7400\n')).tcp!.listen).toBe('0.0.0.0:7400');
  });

  it.each([
    ['an address without a port', three.replace('10.0.0.2:7400', '10.0.0.2'), 'tcp.peers.1.address', /host:port/],
    ['port 0 for a peer', three.replace('10.0.0.2:7400', '10.0.0.2:0'), 'tcp.peers.1.address', /port 1\.\.65535/],
    ['an id that is not a member', three.replace('id: 3', 'id: 9'), 'tcp.peers.2.id', /id of a member/],
    ['a duplicate id', three.replace('id: 3', 'id: 2'), 'tcp.peers.2.id', /unique ids/],
    ['no entry for this node', three.replace('    - { id: 1, address: 10.0.0.1:7400 }\n', ''), 'tcp.peers', /this node's own address/],
  ])('rejects %s', (_name, peers, key, re) => {
    const p = problems(tcp(peers));
    const hit = p.find((x) => x.key === key);
    expect(hit, JSON.stringify(p)).toBeDefined();
    expect(hit!.message).toMatch(re);
  });

  it('rejects an unknown key and a too small maxFrame', () => {
    expect(problems(tcp(three, '  port: 7400\n')).some((x) => x.key === 'tcp.port' && /unknown key/.test(x.message))).toBe(true);
    expect(problems(tcp(three, '  maxFrame: 10\n')).some((x) => x.key === 'tcp.maxFrame')).toBe(true);
  });

  it('maxPending: the bound on connections in handshake, at least the other peers; each mistake names the key and what is expected', () => {
    expect(parseConfigText(tcp(three, '  maxPending: 64\n')).tcp!.maxPending).toBe(64);
    expect(parseConfigText(tcp(three, '  maxPending: 2\n')).tcp!.maxPending).toBe(2);
    const few = problems(tcp(three, '  maxPending: 1\n')).find((x) => x.key === 'tcp.maxPending');
    expect(few?.message).toMatch(/^expected at least 2, the other nodes in tcp\.peers \(they all dial at once after a power cut, .*\), got 1$/);
    for (const bad of ['0', '1025', '2.5', 'many']) {
      const p = problems(tcp(three, `  maxPending: ${bad}\n`)).find((x) => x.key === 'tcp.maxPending');
      expect(p?.message, bad).toMatch(/expected connections: an integer 1\.\.1024/);
    }
  });

  it('maxPending reaches the link of a running node: silent connections beyond it close the oldest in handshake', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-tcp-pending-'));
    const [p1, p2, p3, http] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const text = `cluster: { name: pending, key: ${KEY} }
members: [ { id: 1, name: a }, { id: 2, name: b }, { id: 3, name: c } ]
node: { name: a, dataDir: ${JSON.stringify(join(dir, 'data'))} }
tcp:
  peers: [ { id: 1, address: "127.0.0.1:${p1}" }, { id: 2, address: "127.0.0.1:${p2}" }, { id: 3, address: "127.0.0.1:${p3}" } ]
  maxPending: 2
  helloTimeoutMs: 20000
http: { listen: "127.0.0.1:${http}", tokenFile: ${JSON.stringify(testTokenFile())} }
log: { level: silent }
`;
    const { config, locate } = parseConfigWithPositions(text, 'a.yaml');
    const node = await startNode(resolveConfig(config, join(dir, 'a.yaml'), locate));
    const socks: net.Socket[] = [];
    try {
      const stats = node.links.find((l) => l.name.startsWith('tcp:'))!.stats!;
      // Five connections that never answer the challenge (the peers b and c are not running).
      for (let i = 0; i < 5; i++) {
        const s = net.connect(p1, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
        await new Promise<void>((r) => s.once('data', () => r())); // the challenge: accepted and in handshake
      }
      expect(stats.evictedPending).toBe(3);
      await until('the three oldest closed', () => socks.slice(0, 3).every((s) => s.destroyed || s.readableEnded), 5000);
      expect(socks.slice(3).every((s) => !s.readableEnded)).toBe(true);
    } finally {
      for (const s of socks) s.destroy();
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('mqtt.frames: fallback needs a tcp: section; a wrong value names what is expected', () => {
    const mqtt = (frames: string) => `mqtt:\n  brokers: [mqtt://10.0.0.9:1883]\n  frames: ${frames}\n`;
    const c = parseConfigText(`${tcp(three)}${mqtt('fallback')}`);
    expect(c.mqtt!.frames).toBe('fallback');
    expect(parseConfigText(`${tcp(three)}mqtt:\n  brokers: [mqtt://10.0.0.9:1883]\n`).mqtt!.frames).toBeUndefined(); // start.ts: fallback beside tcp:, always otherwise
    const alone = problems(`${noMqtt}${mqtt('fallback')}`).find((x) => x.key === 'mqtt.frames');
    expect(alone?.message).toMatch(/expected a tcp: section beside mqtt\.frames: fallback/);
    expect(parseConfigText(`${noMqtt}${mqtt('always')}`).mqtt!.frames).toBe('always');
    const bad = problems(`${tcp(three)}${mqtt('sometimes')}`).find((x) => x.key === 'mqtt.frames');
    expect(bad?.message).toMatch(/expected "always" .* or "fallback"/);
  });

  it('`quorumd dev --link tcp` writes configs that pass the schema, one port per node, the broker beside for wills only', () => {
    const text = devConfig({ k: 2, n: 3, key: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', brokerUrl: 'mqtt://127.0.0.1:1', basePort: 21000, dir: '/tmp/x', link: 'tcp' });
    const c = parseConfigText(text);
    expect(c.mqtt).toMatchObject({ brokers: ['mqtt://127.0.0.1:1'], frames: 'fallback', keepaliveSec: 5 });
    expect(c.tcp!.peers.map((p) => p.address)).toEqual([1, 2, 3].map((k) => `127.0.0.1:${devTcpPort(21000, k)}`));
  });
});
