/**
 * Serial links in `quorumd start`, end to end with real processes and real
 * serialport on socat pty pairs:
 *
 *   - a 3-node ring (n1–n2, n2–n3, n3–n1) that also has MQTT: with both links up every
 *     frame arrives twice and the second copy is dropped as a replay (counted in
 *     /metrics, never handed to the engine); with the broker killed the ring alone
 *     elects and commits; with the broker back and n1's wires cut (socat killed) n1
 *     still follows over MQTT;
 *   - examples/two-pis-witness-serial.yaml itself, paths pointed at ptys, starts both
 *     Pis, elects and commits.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { call } from '../../daemon/client/http.ts';
import { Harness, freePort, metricValue, root, serialRing, socatCheck, waitFor, type ProcNode } from './harness.ts';
import { testTokenFile } from '../helpers/auth.ts';

const socat = socatCheck();
const harnesses: Harness[] = [];
afterAll(async () => {
  await Promise.all(harnesses.map((h) => h.dispose()));
});

const WRITES = 200;

async function commitIndex(h: Harness, n: ProcNode): Promise<number> {
  const s = await h.json(n, '/v1/status');
  return typeof s?.commitIndex === 'number' ? s.commitIndex : -1;
}

describe.skipIf(!socat.run)('serial links in quorumd start (socat ptys, real serialport)', () => {
  it('MQTT + serial ring: copies dropped as replays; the ring alone commits; a node whose wires are cut follows over MQTT', async () => {
    const h = new Harness();
    harnesses.push(h);
    const broker = await h.aedesChild();
    const ring = await serialRing(h);
    const nodes = await h.startCluster({ n: 3, links: (k) => ({ brokers: [broker.url], serial: ring(k) }) });
    const leader = await h.waitLeader(30_000);

    // Phase 1: both links up. Every frame comes over MQTT and over the wire.
    const r1 = await h.writes(() => leader, 50, 4, 'both');
    expect(r1.latencies).toHaveLength(50);
    for (const n of nodes) {
      // Each accepted frame had a twin on the other link (unless that one was lost or
      // arrived after the window): most copies must show up as replays, not as input.
      // The twin of a frame just accepted may still be on its way over the slower link
      // (a follower that got few Appends makes the counts small: 2 of 4 once, on a
      // loaded machine), so the share is awaited, bounded, not read once.
      let last = '';
      await waitFor(async () => {
        const m = await h.metrics(n);
        const replays = metricValue(m, 'quorumd_dropped_frames_total', { reason: 'replay' });
        const accepted = metricValue(m, 'quorumd_frames_accepted_total');
        last = `${replays} replays of ${accepted} accepted`;
        return replays > accepted * 0.5;
      }, 20_000, `${n.name}: most copies counted as replays`).catch((e: Error) => {
        throw new Error(`${e.message} (last: ${last})`);
      });
      const m = await h.metrics(n);
      const replays = metricValue(m, 'quorumd_dropped_frames_total', { reason: 'replay' });
      expect(replays, `${n.name} replays`).toBeLessThanOrEqual(metricValue(m, 'quorumd_frames_accepted_total'));
      expect(metricValue(m, 'quorumd_link_up')).toBe(3); // mqtt + two wires
    }

    // Phase 2: the broker dies; the serial ring carries everything.
    await broker.stop();
    await waitFor(async () => metricValue(await h.metrics(leader), 'quorumd_link_up', { link: 'mqtt' }) === 0, 10_000, 'leader sees mqtt down');
    const r2 = await h.writes(() => leader, WRITES, 4, 'serial');
    expect(r2.latencies).toHaveLength(WRITES);
    const l2 = await h.waitLeader(10_000);
    const target = await commitIndex(h, l2);
    await waitFor(async () => (await Promise.all(nodes.map((n) => commitIndex(h, n)))).every((c) => c >= target), 10_000, 'every node commits over serial');

    // Phase 3: broker back; n1's both wires cut (their socat killed). n1 must keep
    // following through MQTT, and the cluster keeps committing.
    await h.aedesChild(broker.port);
    const n1 = nodes[0]!;
    await waitFor(async () => metricValue(await h.metrics(n1), 'quorumd_link_up', { link: 'mqtt' }) === 1, 20_000, 'n1 reconnects to the broker');
    await h.ptys[0]!.kill(); // n1–n2
    await h.ptys[2]!.kill(); // n3–n1
    await waitFor(async () => {
      const m = await h.metrics(n1);
      return metricValue(m, 'quorumd_link_up') === 1;
    }, 10_000, 'n1 sees both wires down');
    const l3 = await h.waitLeader(15_000);
    const r3 = await h.writes(() => l3, 50, 4, 'cut');
    expect(r3.latencies).toHaveLength(50);
    const c3 = await commitIndex(h, l3);
    await waitFor(async () => (await commitIndex(h, n1)) >= c3, 10_000, `n1 (wires cut) reaches commit ${c3} over MQTT`);
    const v = await call(n1.url, 'GET', '/v1/kv/cut49');
    expect(v.status).toBe(200);
    expect(v.body.toString()).toBe('v49');
  });

  it('examples/two-pis-witness-serial.yaml starts on ptys: both Pis elect a leader and commit', async () => {
    const h = new Harness();
    harnesses.push(h);
    const wire = await h.pty(); // pi-left /dev/serial0 ⇄ pi-right /dev/serial0
    const wl = await h.pty(); // pi-left ⇄ witness (nobody at the far end yet)
    const wr = await h.pty(); // pi-right ⇄ witness
    const example = readFileSync(join(root, 'examples', 'two-pis-witness-serial.yaml'), 'utf8');
    writeFileSync(join(h.dir, 'cluster.key'), h.key);
    const made: Array<{ name: string; id: number; file: string; url: string }> = [];
    for (const [name, id, p1, p2] of [
      ['pi-left', 1, wire.a, wl.a],
      ['pi-right', 2, wire.b, wr.a],
    ] as const) {
      const doc = parseDocument(example);
      const port = await freePort();
      doc.setIn(['cluster', 'keyFile'], join(h.dir, 'cluster.key'));
      doc.setIn(['node', 'name'], name);
      doc.setIn(['node', 'dataDir'], join(h.dir, name));
      doc.setIn(['serial', 0, 'path'], p1);
      doc.setIn(['serial', 0, 'peer'], id === 1 ? 2 : 1);
      doc.setIn(['serial', 1, 'path'], p2);
      doc.setIn(['http', 'listen'], `127.0.0.1:${port}`);
      doc.setIn(['http', 'tokenFile'], testTokenFile());
      doc.deleteIn(['hooks']);
      const file = join(h.dir, `${name}.yaml`);
      writeFileSync(file, doc.toString());
      made.push({ name, id, file, url: `http://127.0.0.1:${port}` });
    }
    const procs = made.map((m) => h.addNode(m.name, m.id, m.file, m.url));
    const leader = await h.waitLeader(30_000, procs);
    expect(['pi-left', 'pi-right']).toContain(leader.name);
    const w = await h.writes(() => leader, 20, 2, 'pump');
    expect(w.latencies).toHaveLength(20);
    const other = procs.find((p) => p !== leader)!;
    const r = await call(other.url, 'GET', '/v1/kv/pump19');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('v19');
    // serial maxFrame 1024 bounds one entry: a larger value is refused up front (413), not lost.
    const big = await call(leader.url, 'PUT', '/v1/kv/big', { body: 'x'.repeat(2000) });
    expect(big.status, big.body.toString()).toBe(413);
    expect(big.body.toString()).toMatch(/exceed|too large/i);
  });
});
