/**
 * The external engines without servers: the safety window's arithmetic, the
 * activation gate switching off at the window's end by its own timer (fake timers:
 * no waiting), the config sections and their cross-key checks, and etcd's error
 * classification (503 not applied vs 504 unknown).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseWindow } from '../../daemon/engines/safety.ts';
import { LeadershipGate } from '../../daemon/engines/leadership.ts';
import { notApplied, prefixEnd, rev } from '../../daemon/engines/etcd.ts';
import { zxid } from '../../daemon/engines/zookeeper.ts';
import { ConfigError, parseConfigText, resolveConfig } from '../../daemon/config/load.ts';
import type { ActivationEvent } from '../../daemon/engines/types.ts';

const KEY = 'ab'.repeat(32);

function yaml(engineLines: string, extra = ''): string {
  return [
    `cluster: { name: plant, key: "${KEY}" }`,
    'members: [ { id: 1, name: a }, { id: 2, name: b } ]',
    'node: { name: a, dataDir: /tmp/quorumd-cfg-unused }',
    engineLines,
    extra,
  ].join('\n');
}

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'n.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.key}: ${p.message}`);
  }
}

describe('the safety window', () => {
  it('ends T·(1−ρ) − L − M after the send time of the newest answered request', () => {
    const w = new LeaseWindow({ driftRate: 0.001, marginMs: 500, serverLagMs: 0 });
    expect(w.valid(0)).toBe(false);
    w.answered(1000, 5000);
    expect(w.actUntil()).toBeCloseTo(1000 + 5000 * 0.999 - 500);
    expect(w.valid(5494)).toBe(true);
    expect(w.valid(5495)).toBe(false);
    // An answer to an older request changes nothing; a newer one moves the end.
    w.answered(900, 5000);
    expect(w.actUntil()).toBeCloseTo(5495);
    w.answered(2000, 5000);
    expect(w.actUntil()).toBeCloseTo(6495);
    // ZooKeeper's lag is subtracted too.
    const z = new LeaseWindow({ driftRate: 0, marginMs: 100, serverLagMs: 900 });
    z.answered(0, 3000);
    expect(z.actUntil()).toBe(2000);
    z.lost();
    expect(z.valid(1)).toBe(false);
    expect(() => new LeaseWindow({ driftRate: -1, marginMs: 0, serverLagMs: 0 })).toThrow(/driftRate/);
    expect(() => w.answered(0, 0)).toThrow(/ttlMs/);
  });
});

describe('the activation gate', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is active only while elected and inside the window, and switches off by its own timer at the end', () => {
    vi.useFakeTimers();
    const now = () => Date.now();
    const t0 = now();
    const w = new LeaseWindow({ driftRate: 0, marginMs: 100, serverLagMs: 0 });
    const g = new LeadershipGate(w, now);
    const evs: ActivationEvent[] = [];
    g.onActivation((e) => evs.push(e));
    g.elected(7);
    expect(g.active).toBe(false); // no answer yet: never active without a window
    w.answered(now(), 1000);
    g.renewed();
    expect(g.active).toBe(true);
    expect(evs.map((e) => [e.active, e.token])).toEqual([[true, 7]]);
    // No renewal: the timer ends it at t0 + 900 exactly.
    vi.advanceTimersByTime(899);
    expect(evs).toHaveLength(1);
    vi.advanceTimersByTime(2);
    expect(evs.map((e) => [e.active, e.token, e.reason])).toEqual([[true, 7, 'renewed'], [false, 7, 'window-ended']]);
    expect(now() - t0).toBeGreaterThanOrEqual(900);
    expect(g.windowEnds).toBe(1);
    // A renewal that comes back (the lease lived): active again with the same token.
    w.answered(now(), 1000);
    g.renewed();
    expect(evs.at(-1)).toMatchObject({ active: true, token: 7 });
    // Renewals keep it on.
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(300);
      w.answered(now(), 1000);
      g.renewed();
    }
    expect(g.active).toBe(true);
    expect(evs).toHaveLength(3);
    // Deposed: off at once, the event names the epoch that ended.
    g.deposed('lease-lost');
    expect(evs.at(-1)).toMatchObject({ active: false, token: 7, reason: 'lease-lost' });
    // A new epoch while active: off, then on with the new token.
    w.answered(now(), 1000);
    g.elected(9);
    g.elected(11);
    expect(evs.slice(-3).map((e) => [e.active, e.token])).toEqual([[true, 9], [false, 9], [true, 11]]);
    g.stop();
    expect(evs.at(-1)).toMatchObject({ active: false, token: 11, reason: 'stopped' });
    w.answered(now(), 1000);
    g.elected(12);
    expect(g.active).toBe(false); // stopped for good
  });

  it('judges "active" at the instant asked, even when the timer has not run yet (a busy event loop)', () => {
    let t = 0;
    const w = new LeaseWindow({ driftRate: 0, marginMs: 0, serverLagMs: 0 });
    const g = new LeadershipGate(w, () => t);
    w.answered(0, 1000);
    g.elected(3);
    expect(g.active).toBe(true);
    t = 1000; // the timer did not fire (real timers, none advanced)
    expect(g.active).toBe(false);
    g.stop();
  });
});

describe('etcd and ZooKeeper helpers', () => {
  it('prefix range ends, revisions and zxids', () => {
    expect(prefixEnd(Buffer.from('a/')).toString()).toBe('a0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect(rev('42')).toBe(42);
    expect(() => rev('18446744073709551615')).toThrow(/safe integer/);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(0x2_0000_0011n);
    expect(zxid(b)).toBe(0x2_0000_0011);
  });

  it('classifies etcd failures: not sent / refused → not applied; anything else unknown', () => {
    expect(notApplied(new Error('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'))).toBe(true);
    expect(notApplied(new Error('etcdserver: no leader'))).toBe(true);
    expect(notApplied(new Error('etcdserver: permission denied'))).toBe(true);
    expect(notApplied(new Error('etcdserver: request timed out'))).toBe(false);
    expect(notApplied(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'))).toBe(false);
    expect(notApplied(new Error('13 INTERNAL: Received RST_STREAM'))).toBe(false);
  });
});

describe('config: engine etcd / zookeeper', () => {
  it('accepts a minimal etcd and ZooKeeper config without links, with the documented defaults', () => {
    const e = parseConfigText(yaml('engine: etcd\netcd: { endpoints: [ "http://10.0.0.5:2379" ] }'), 'n.yaml');
    expect(e.etcd).toMatchObject({ ttlSec: 5, driftRate: 0.001, marginMs: 500 });
    const z = parseConfigText(yaml('engine: zookeeper\nzookeeper: { servers: [ "10.0.0.5:2181", "10.0.0.6:2181" ] }'), 'n.yaml');
    expect(z.zookeeper).toMatchObject({ sessionTimeoutMs: 30_000, serverLagMs: 12_000 });
  });

  it('names every bad key and what was expected', () => {
    expect(problems(yaml('engine: etcd'))).toEqual([expect.stringMatching(/^etcd: missing: engine: etcd needs an `etcd:` section/)]);
    expect(problems(yaml('engine: zookeeper'))).toEqual([expect.stringMatching(/^zookeeper: missing/)]);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "10.0.0.5:2379" ] }'))[0]).toMatch(/etcd\.endpoints\.0: expected an etcd client URL/);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1", "https://b:2" ] }'))[0]).toMatch(/all endpoints http:\/\/ or all https:\/\//);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ], ttlSec: 1, keepAliveMs: 500 }'))[0]).toMatch(/etcd\.keepAliveMs: expected at least two renewals/);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ], password: x }'))[0]).toMatch(/etcd\.username: missing: a password needs etcd\.username/);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ], prefix: "/no-slash" }'))[0]).toMatch(/etcd\.prefix: expected a key prefix/);
    expect(problems(yaml('engine: zookeeper\nzookeeper: { servers: [ "a:2181" ], sessionTimeoutMs: 10000 }'))[0]).toMatch(/zookeeper\.sessionTimeoutMs: expected a session timeout long enough/);
    expect(problems(yaml('engine: zookeeper\nzookeeper: { servers: [ "a:2181" ], tls: { caFile: ca.pem } }'))[0]).toMatch(/zookeeper\.tls: not supported: node-zookeeper-client speaks plain TCP/);
    expect(problems(yaml('engine: zookeeper\nzookeeper: { servers: [ "a" ] }'))[0]).toMatch(/zookeeper\.servers\.0: expected a ZooKeeper server as host:port/);
    expect(problems(yaml('engine: raft\netcd: { endpoints: [ "http://a:1" ] }\nmqtt: { brokers: [ "mqtt://b:1883" ] }'))[0]).toMatch(/etcd: expected no etcd: section with engine: raft/);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ] }\nmqtt: { brokers: [ "mqtt://b:1883" ] }'))[0]).toMatch(/mqtt: expected no mqtt: section with engine: etcd/);
    // fencing: relays and the watchdog bound yes; what only a boards-only quorum needs, no.
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ] }', 'fencing: { stonith: false, watchdogTimeoutMs: 5000 }'))).toEqual([]);
    const bad = problems(yaml('engine: zookeeper\nzookeeper: { servers: [ "a:2181" ] }', 'fencing:\n  randomDelayMaxMs: 100\n  priorityDelayMs: 100\n  waitForAll: [a, b]\n  activation: { leaseMs: 900 }\n  watchdog: { path: /dev/watchdog }\n  targets:\n    - { node: b, levels: [ [ { type: watchdog-wait, waitMs: 1000 } ] ] }'));
    expect(bad.join('\n')).toMatch(/fencing\.randomDelayMaxMs: has no meaning for engine zookeeper/);
    expect(bad.join('\n')).toMatch(/fencing\.priorityDelayMs: has no meaning for engine zookeeper/);
    expect(bad.join('\n')).toMatch(/fencing\.waitForAll: has no meaning for engine zookeeper/);
    expect(bad.join('\n')).toMatch(/fencing\.activation\.leaseMs: has no meaning for engine zookeeper/);
    expect(bad.join('\n')).not.toMatch(/fencing\.watchdog:/);
    expect(bad.join('\n')).toMatch(/fencing\.targets\.0\.levels\.0\.0\.type: expected gpio-relay, serial-relay or dev-relay: watchdog-wait has no meaning for engine zookeeper/);
    expect(problems(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ], ttl: 5 }'))[0]).toMatch(/etcd\.ttl: unknown key "ttl"/);
  });

  it('reads the service password from passwordFile', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-cfg-'));
    try {
      writeFileSync(join(dir, 'pw'), 'secret-pw\n', { mode: 0o600 });
      const cfg = parseConfigText(yaml('engine: etcd\netcd: { endpoints: [ "http://a:1" ], username: q, passwordFile: pw }'), join(dir, 'n.yaml'));
      expect(resolveConfig(cfg, join(dir, 'n.yaml')).servicePassword).toBe('secret-pw');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
