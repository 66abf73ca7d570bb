/** The `tcp:` link section: accepted as documented; each mistake names its key. */
import { describe, expect, it } from 'vitest';
import { good, problems } from './helpers.ts';
import { parseConfigText } from '../../../daemon/config/load.ts';
import { devConfig, devTcpPort } from '../../../daemon/dev.ts';

const noMqtt = good.replace(/mqtt:[\s\S]*$/, '');
const tcp = (peers: string, extra = '') => `${noMqtt}tcp:\n  peers:\n${peers}${extra}`;
const three = '    - { id: 1, address: 10.0.0.1:7400 }\n    - { id: 2, address: 10.0.0.2:7400 }\n    - { id: 3, address: 10.0.0.3:7400 }\n';

describe('config tcp:', () => {
  it('is a link of its own, with the documented defaults', () => {
    const c = parseConfigText(tcp(three));
    expect(c.tcp).toEqual({ peers: [{ id: 1, address: '10.0.0.1:7400' }, { id: 2, address: '10.0.0.2:7400' }, { id: 3, address: '10.0.0.3:7400' }], maxFrame: 65536, helloTimeoutMs: 2000 });
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
