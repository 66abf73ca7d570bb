/**
 * The links part of the config (daemon/config/schema.ts `serial:`), and what
 * `startNode` does with a serial device that is not there: every mistake is a
 * ConfigError naming the key and line; a missing device is a link that is down and
 * retried, not a failed start.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfigText, resolveConfig } from '../../daemon/config/load.ts';
import { startNode, type RunningNode } from '../../daemon/start.ts';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { waitFor } from './harness.ts';

const KEY = '00112233445566778899aabbccddeeff';
const head = `cluster: { name: c, key: "${KEY}" }
members: [{ id: 1, name: a }, { id: 2, name: b }, { id: 3, name: w, role: witness }]
node: { name: a, dataDir: /tmp/x }
`;

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'n.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line}:${p.key}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('serial links in the config', () => {
  it('accepts point-to-point wires and a bus, with defaults', () => {
    const c = parseConfigText(`${head}serial:\n  - { path: /dev/serial0, peer: 2 }\n  - { path: /dev/ttyAMA2, bus: { members: [1, 2, 3] }, baudRate: 57600, maxFrame: 256 }\n`);
    expect(c.serial).toEqual([
      { path: '/dev/serial0', peer: 2, baudRate: 115200, maxFrame: 1024 },
      { path: '/dev/ttyAMA2', bus: { members: [1, 2, 3], guardMs: 10 }, baudRate: 57600, maxFrame: 256 },
    ]);
  });

  it('names the key, the line and what was expected for every mistake', () => {
    const both = problems(`${head}serial:\n  - { path: /dev/serial0, peer: 2, bus: { members: [1, 2] } }\n`);
    expect(both).toEqual([expect.stringMatching(/^5:serial\.0: expected exactly one of `peer/)]);
    const neither = problems(`${head}serial:\n  - { path: /dev/serial0 }\n`);
    expect(neither).toEqual([expect.stringMatching(/^5:serial\.0: expected exactly one of/)]);
    const twice = problems(`${head}serial:\n  - { path: /dev/serial0, peer: 2 }\n  - { path: /dev/serial0, peer: 3 }\n`);
    expect(twice).toEqual([expect.stringMatching(/^6:serial\.1\.path: expected a device not used by another serial link; \/dev\/serial0 appears twice/)]);
    const stranger = problems(`${head}serial:\n  - { path: /dev/ttyAMA2, bus: { members: [1, 9] } }\n`);
    expect(stranger).toEqual([expect.stringMatching(/^5:serial\.0\.bus\.members\.1: expected the id of a member, got 9/)]);
    const notMe = problems(`${head}serial:\n  - { path: /dev/ttyAMA2, bus: { members: [2, 3] } }\n`);
    expect(notMe).toEqual([expect.stringMatching(/serial\.0\.bus\.members: expected this node's id \(1\) among the bus members/)]);
    const dup = problems(`${head}serial:\n  - { path: /dev/ttyAMA2, bus: { members: [1, 2, 2] } }\n`);
    expect(dup).toEqual([expect.stringMatching(/serial\.0\.bus\.members\.2: expected unique ids; 2 appears twice/)]);
    const lonely = problems(`${head}serial:\n  - { path: /dev/ttyAMA2, bus: { members: [1] } }\n`);
    expect(lonely).toEqual([expect.stringMatching(/serial\.0\.bus\.members: expected at least 2 node ids on a bus/)]);
    const self = problems(`${head}serial:\n  - { path: /dev/serial0, peer: 1 }\n`);
    expect(self).toEqual([expect.stringMatching(/serial\.0\.peer: expected another node than this one/)]);
    const typo = problems(`${head}serial:\n  - { path: /dev/serial0, peer: 2, baud: 9600 }\n`);
    expect(typo).toEqual([expect.stringMatching(/serial\.0\.baud: unknown key "baud"/)]);
    const small = problems(`${head}serial:\n  - { path: /dev/serial0, peer: 2, maxFrame: 16 }\n`);
    expect(small).toEqual([expect.stringMatching(/serial\.0\.maxFrame: expected bytes: an integer 128\.\.65536/)]);
    const guard = problems(`${head}serial:\n  - { path: /dev/x, bus: { members: [1, 2], guardMs: -1 } }\n`);
    expect(guard).toEqual([expect.stringMatching(/serial\.0\.bus\.guardMs: expected milliseconds: an integer 0\.\.1000/)]);
  });
});

describe('startNode with a serial device that is not there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-nodev-'));
  let broker: RunningBroker | undefined;
  let node: RunningNode | undefined;
  afterAll(async () => {
    await node?.stop();
    if (broker) await new Promise((r) => broker!.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts, reports the wire down in /v1/status and /metrics, and keeps MQTT working', async () => {
    broker = await startBroker({ port: 0, clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
    const text = `cluster: { name: c, key: "${KEY}" }
members: [{ id: 1, name: a }, { id: 2, name: b }]
node: { name: a, dataDir: ${join(dir, 'a')} }
mqtt: { brokers: ["mqtt://127.0.0.1:${broker.port}"] }
serial: [{ path: ${join(dir, 'no-such-tty')}, peer: 2 }]
log: { level: silent }
`;
    node = await startNode(resolveConfig(parseConfigText(text, 'a.yaml'), join(dir, 'a.yaml')), { httpPort: 0 });
    const n = node;
    await waitFor(() => n.links[0]!.up?.() === true && (n.links[1]!.stats?.openFailures ?? 0) >= 1, 10_000, 'mqtt up and the wire failing to open');
    // No token configured: the node made <dataDir>/api.token at its first start; read it as `quorumd --data-dir` would.
    const auth = { headers: { Authorization: `Bearer ${readFileSync(n.apiTokenFile!, 'utf8').trim()}` } };
    expect(n.apiTokenFile).toBe(join(dir, 'a', 'api.token'));
    expect(statSync(n.apiTokenFile!).mode & 0o777).toBe(0o600);
    expect((await fetch(`${n.url}/v1/status`)).status).toBe(401);
    const status = await (await fetch(`${n.url}/v1/status`, auth)).json() as { links: Array<{ name: string; up: boolean }> };
    expect(status.links).toEqual([
      { name: 'mqtt', up: true },
      { name: `serial0:${join(dir, 'no-such-tty')}`, up: false },
    ]);
    const metrics = await (await fetch(`${n.url}/metrics`, auth)).text();
    expect(metrics).toMatch(/quorumd_link_up\{link="serial0:[^"]*no-such-tty"\} 0/);
    expect(metrics).toMatch(/quorumd_link_errors_total\{link="serial0:[^"]*no-such-tty",kind="openFailures"\} [1-9]/);
  });
});
