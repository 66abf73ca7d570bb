import { describe, expect, it } from 'vitest';
import { ActivationGate, leaseSafeAtMs } from '../../../src/fence/activation.ts';

describe('leaseSafeAtMs', () => {
  it('adds lease with drift both ways, the watchdog timeout and the margin', () => {
    // 10 s lease, 200 ppm: 10000·1.0002/0.9998 = 10004.0008 → 10005
    expect(leaseSafeAtMs({ electedAtMs: 1000, leaseMs: 10_000, maxDriftPpm: 200, watchdogTimeoutMs: 15_000, marginMs: 500 })).toBe(1000 + 10_005 + 15_000 + 500);
    expect(leaseSafeAtMs({ electedAtMs: 0, leaseMs: 1000, maxDriftPpm: 0, watchdogTimeoutMs: 0, marginMs: 0 })).toBe(1000);
    expect(() => leaseSafeAtMs({ electedAtMs: 0, leaseMs: -1, maxDriftPpm: 0, watchdogTimeoutMs: 0, marginMs: 0 })).toThrow(/leaseMs: expected a number/);
  });
});

describe('ActivationGate', () => {
  it('not leader: not active', () => {
    const g = new ActivationGate({ self: 1 });
    expect(g.status()).toMatchObject({ elected: false, active: false, waitingFor: 'not leader' });
  });

  it('first term of a fresh cluster: active at once', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 1, nowMs: 0, previousLeader: 'none', safeAtMs: null });
    expect(g.status()).toMatchObject({ active: true, activeBy: 'no-previous-leader' });
  });

  it('previous leader known: asks for a fence, becomes active when it is fenced', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 5, nowMs: 100, previousLeader: 2, safeAtMs: 30_100 });
    let s = g.status();
    expect(s.active).toBe(false);
    expect(s.wantFence).toBe(2);
    expect(s.waitingFor).toMatch(/previous leader n2: about to fence it \(STONITH\), or its lease to expire in 30000 ms/);
    g.fenceStarted(2, 200);
    expect(g.status().waitingFor).toMatch(/fencing it/);
    g.fenceResult(3, true, 300); // someone else: irrelevant
    expect(g.status().active).toBe(false);
    g.fenceResult(2, true, 2000);
    s = g.status();
    expect(s).toMatchObject({ active: true, activeBy: 'fenced', wantFence: null, waitingFor: '' });
  });

  it('fence failed: waits for the lease bound, not a moment less', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 5, nowMs: 0, previousLeader: 2, safeAtMs: 30_000 });
    g.fenceResult(2, false, 5000, 'relay gpio:2 timeout');
    expect(g.status()).toMatchObject({ active: false, wantFence: null });
    expect(g.status().waitingFor).toMatch(/fence failed \(relay gpio:2 timeout\); waiting for its lease to expire in 25000 ms/);
    expect(g.nextDeadline()).toBe(30_000);
    g.tick(29_999);
    expect(g.status().active).toBe(false);
    g.tick(30_000);
    expect(g.status()).toMatchObject({ active: true, activeBy: 'lease-expired' });
  });

  it('previous leader unknown: only the lease bound helps', () => {
    const g = new ActivationGate({ self: 3 });
    g.elected({ term: 9, nowMs: 0, previousLeader: 'unknown', safeAtMs: 20_000 });
    expect(g.status().wantFence).toBeNull();
    g.operatorConfirmed(2, 10);
    expect(g.status().active).toBe(false);
    g.tick(20_000);
    expect(g.status().activeBy).toBe('lease-expired');
  });

  it('acknowledgement from the previous leader in our term, or an operator, makes it active', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 4, nowMs: 0, previousLeader: 2, safeAtMs: null });
    g.acknowledged(2, 3, 10); // an older term proves nothing
    expect(g.status().active).toBe(false);
    g.acknowledged(2, 4, 20);
    expect(g.status().activeBy).toBe('acknowledged');
    g.steppedDown(30);
    g.elected({ term: 6, nowMs: 40, previousLeader: 3, safeAtMs: null });
    expect(g.status().active).toBe(false);
    g.operatorConfirmed(3, 50);
    expect(g.status().activeBy).toBe('operator');
  });

  it('re-elected after being the previous leader itself: active at once', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 2, nowMs: 0, previousLeader: 1, safeAtMs: null });
    expect(g.status().activeBy).toBe('self');
  });

  it('without STONITH it never asks for a fence and says so', () => {
    const g = new ActivationGate({ self: 1, stonith: false });
    g.elected({ term: 2, nowMs: 0, previousLeader: 2, safeAtMs: 15_000 });
    expect(g.status().wantFence).toBeNull();
    expect(g.status().waitingFor).toMatch(/STONITH disabled/);
    g.tick(15_000);
    expect(g.status().active).toBe(true);
  });

  it('first start waits for all: no activation and no fence until every board was seen once', () => {
    const g = new ActivationGate({ self: 1, waitForAll: [1, 2] });
    g.elected({ term: 1, nowMs: 0, previousLeader: 'none', safeAtMs: null });
    let s = g.status();
    expect(s).toMatchObject({ active: false, wantFence: null, formed: false });
    expect(s.waitingFor).toMatch(/first start: waiting until every node has been seen once \(missing: n2\)/);
    g.steppedDown(10);
    g.elected({ term: 2, nowMs: 20, previousLeader: 2, safeAtMs: 100 });
    g.tick(1000); // even the lease bound does not activate before formation
    s = g.status();
    expect(s).toMatchObject({ active: false, wantFence: null });
    g.peerSeen(2, 2000);
    s = g.status();
    expect(s).toMatchObject({ active: true, formed: true, activeBy: 'lease-expired' });
  });

  it('a formed cluster (persisted) does not wait', () => {
    const g = new ActivationGate({ self: 1, waitForAll: [1, 2], formed: true });
    g.elected({ term: 3, nowMs: 0, previousLeader: 2, safeAtMs: 100 });
    expect(g.status().wantFence).toBe(2);
  });

  it('stepping down ends activity; a new term starts from scratch', () => {
    const g = new ActivationGate({ self: 1 });
    g.elected({ term: 1, nowMs: 0, previousLeader: 'none', safeAtMs: null });
    g.steppedDown(5);
    expect(g.status().active).toBe(false);
    g.elected({ term: 3, nowMs: 6, previousLeader: 2, safeAtMs: 1000 });
    g.fenceResult(2, true, 7);
    expect(g.status().activeBy).toBe('fenced');
    // a fence result from the earlier leadership does not carry over
    g.elected({ term: 4, nowMs: 8, previousLeader: 2, safeAtMs: 1000 });
    expect(g.status().active).toBe(false);
  });

  it('bad input is named', () => {
    expect(() => new ActivationGate({ self: 0 })).toThrow(/self: expected a node id/);
    expect(() => new ActivationGate({ self: 1, waitForAll: [1, 'x' as never] })).toThrow(/waitForAll\[1\]/);
    const g = new ActivationGate({ self: 1 });
    expect(() => g.elected({ term: 0, nowMs: 0, previousLeader: 'none', safeAtMs: null })).toThrow(/term: expected an integer ≥ 1/);
    expect(() => g.elected({ term: 1, nowMs: 0, previousLeader: 300, safeAtMs: null })).toThrow(/previousLeader: expected a node id/);
    g.elected({ term: 2, nowMs: 10, previousLeader: 'none', safeAtMs: null });
    expect(() => g.elected({ term: 2, nowMs: 11, previousLeader: 'none', safeAtMs: null })).toThrow(/not above/);
    expect(() => g.tick(5)).toThrow(/time went backwards/);
    expect(() => g.fenceResult(2, 'yes' as never, 20)).toThrow(/ok: expected a boolean/);
  });
});
