/**
 * Message economy: an idle cluster sends one small heartbeat round per interval.
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

describe('raft RPC counts', () => {
  it('an idle leader sends at most one heartbeat round per heartbeat interval, and nothing else', () => {
    const c = new Cluster({ seed: 71, voters: [1, 2, 3, 4, 5], wire: true });
    c.waitLeader();
    c.run(50);
    c.sent.clear();
    c.maxFrame.clear();
    c.run(1000); // 10 s of virtual time; heartbeat 50 ms = 5 ticks
    const hb = c.sent.get('Heartbeat') ?? 0;
    expect(hb).toBeLessThanOrEqual((1000 / 5 + 1) * 4);
    expect(hb).toBeGreaterThanOrEqual((1000 / 5 - 1) * 4);
    expect([...c.sent.keys()].sort()).toEqual(['Heartbeat', 'HeartbeatReply']);
    // docs/wire.md: an idle heartbeat, tag included, is at most 32 bytes (worst-case envelope).
    expect(c.maxFrame.get('Heartbeat')!).toBeLessThanOrEqual(32);
    expect(c.maxFrame.get('HeartbeatReply')!).toBeLessThanOrEqual(32);
  });

  it('commit reaches followers on the next heartbeat, then heartbeats omit it again', () => {
    const c = new Cluster({ seed: 72, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.propose('a');
    c.run(20);
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(['a']);
    c.record = true;
    c.run(20);
    const hbs = c.log.filter((m) => m.type === 7);
    expect(hbs.length).toBeGreaterThan(0);
    expect(hbs.every((m) => m.type === 7 && m.commit === undefined)).toBe(true);
    expect(l.r.status().progress.every((p) => p.knownCommit === l.r.status().commitIndex)).toBe(true);
  });
});
