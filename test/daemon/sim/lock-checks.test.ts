/**
 * The lock clients' checks (daemon/sim/locks.ts) against a fake lock service on a bare
 * scheduler: a correct one passes a long run; each kind of wrong answer is caught by
 * its check (mutual exclusion, 400, token growth).
 */
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../../firmware-sim/scheduler.ts';
import { Rng } from '../../../src/rng.ts';
import { Status, type ClientResult } from '../../../daemon/runtime/index.ts';
import { LockWorkload, type LockNode } from '../../../daemon/sim/locks.ts';
import { SimViolation } from '../../../daemon/sim/violation.ts';

type Bug = 'none' | 'ignore-holder' | 'bad-request' | 'same-token' | 'early-expiry';

/** A lock service in virtual time: stamps a command when it arrives (LATENCY after it is sent), answers LATENCY later. */
function fakeService(sched: Scheduler, bug: Bug): LockNode {
  const LATENCY = 5000;
  const locks = new Map<string, { lease: string; token: number; ttlMs: number; expiresUs: number }>();
  let tokens = 0;
  const later = (fn: () => ClientResult, cb: (r: ClientResult) => void) =>
    sched.after(LATENCY, () => {
      const r = fn();
      sched.after(LATENCY, () => cb(r));
    });
  const live = (name: string) => {
    const l = locks.get(name);
    return l && sched.now < l.expiresUs ? l : undefined;
  };
  const ttlUs = (ttlMs: number) => (bug === 'early-expiry' ? ttlMs * 900 : ttlMs * 1000);
  return {
    id: 1,
    lockAcquire: (name, _owner, ttlMs, lease, cb) =>
      later(() => {
        if (bug === 'bad-request') return { status: Status.BAD_REQUEST, error: 'now: expected an integer' };
        const held = live(name);
        if (held && bug !== 'ignore-holder') return { status: Status.CONFLICT, token: held.token };
        const token = bug === 'same-token' ? 1 : ++tokens;
        locks.set(name, { lease, token, ttlMs, expiresUs: sched.now + ttlUs(ttlMs) });
        return { status: Status.OK, token, ttlMs };
      }, cb),
    lockRenew: (name, lease, cb) =>
      later(() => {
        const held = live(name);
        if (!held || held.lease !== lease) return { status: Status.CONFLICT, error: 'not held' };
        held.expiresUs = sched.now + ttlUs(held.ttlMs);
        return { status: Status.OK, token: held.token };
      }, cb),
    lockRelease: (name, lease, cb) =>
      later(() => {
        const held = live(name);
        if (held && held.lease === lease) locks.delete(name);
        return { status: Status.OK };
      }, cb),
  };
}

function run(bug: Bug, seed: number): { violation: SimViolation | undefined; lw: LockWorkload } {
  const sched = new Scheduler();
  const node = fakeService(sched, bug);
  const lw = new LockWorkload(sched, new Rng(seed), () => [node], (inv, detail) => {
    throw new SimViolation(inv, detail, sched.now / 1000);
  });
  lw.start(60_000_000);
  try {
    sched.run(70_000_000);
  } catch (e) {
    if (e instanceof SimViolation) return { violation: e, lw };
    throw e;
  }
  return { violation: undefined, lw };
}

describe('lock checks', () => {
  it('a correct lock service passes: grants, renewals, conflicts, releases', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { violation, lw } = run('none', seed);
      expect(violation).toBeUndefined();
      expect(lw.stats.grants).toBeGreaterThan(5);
      expect(lw.stats.renewals).toBeGreaterThan(5);
      expect(lw.stats.conflicts).toBeGreaterThan(0);
      expect(lw.stats.releases).toBeGreaterThan(0);
      expect(lw.pending).toBe(0);
    }
  });

  it('a grant while another client holds the lock: lock-mutual-exclusion', () => {
    expect(run('ignore-holder', 1).violation?.invariant).toBe('lock-mutual-exclusion');
  });

  it('a lease that ends before ttl after its command was sent: lock-mutual-exclusion (no margin)', () => {
    expect(run('early-expiry', 1).violation?.invariant).toBe('lock-mutual-exclusion');
  });

  it('a 400 for a lock command: lock-bad-request', () => {
    expect(run('bad-request', 1).violation?.invariant).toBe('lock-bad-request');
  });

  it('a later grant with a token not above an earlier one: lock-token-growth', () => {
    expect(run('same-token', 1).violation?.invariant).toBe('lock-token-growth');
  });
});
