/**
 * The lock clients' checks (daemon/sim/locks.ts) against a fake lock service on a bare
 * scheduler: a correct one passes a long run; each kind of wrong answer is caught by
 * its check (mutual exclusion, 400, token growth).
 */
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../../firmware-sim/scheduler.ts';
import { Rng } from '../../../src/rng.ts';
import { Status, type ClientResult } from '../../../daemon/runtime/index.ts';
import { DEFAULT_LOCK_WORKLOAD, LockWorkload, type LockNode, type LockWorkloadOptions } from '../../../daemon/sim/locks.ts';
import { SimViolation } from '../../../daemon/sim/violation.ts';

type Bug = 'none' | 'ignore-holder' | 'bad-request' | 'same-token' | 'early-expiry' | 'short-lease';

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
  const ttlUs = (ttlMs: number) => (bug === 'early-expiry' ? ttlMs * 900 : bug === 'short-lease' ? ttlMs * 250 : ttlMs * 1000);
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

function run(bug: Bug, seed: number, opts: Partial<LockWorkloadOptions> = {}): { violation: SimViolation | undefined; lw: LockWorkload } {
  const sched = new Scheduler();
  const node = fakeService(sched, bug);
  const lw = new LockWorkload(sched, new Rng(seed), () => [node], (inv, detail) => {
    throw new SimViolation(inv, detail, sched.now / 1000);
  }, { ...DEFAULT_LOCK_WORKLOAD, ...opts });
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
      // Holds lapse and the lock passes to another client when its lease ran out, never before.
      expect(lw.stats.takeovers).toBeGreaterThan(0);
      expect(lw.stats.takeoverMinMs!).toBeGreaterThanOrEqual(0);
    }
  });

  it('a grant while another client holds the lock: lock-mutual-exclusion', () => {
    expect(run('ignore-holder', 1).violation?.invariant).toBe('lock-mutual-exclusion');
  });

  it('a lease that ends before ttl after its command was sent: lock-mutual-exclusion (no margin)', () => {
    expect(run('early-expiry', 1).violation?.invariant).toBe('lock-mutual-exclusion');
  });

  it('a lease that ends so early that a renewal is refused, with no other client about: lock-early-expiry', () => {
    // One client: nobody takes the lock over, so mutual exclusion alone would not see it.
    const { violation } = run('short-lease', 1, { clients: 1, names: ['pump'] });
    expect(violation?.invariant).toBe('lock-early-expiry');
    expect(violation?.detail).toMatch(/^c1 (renew|release) pump \(token \d+, .*\) answered 409 by n1 at [\d.]+ ms \(.*\): the lease ended before [\d.]+ ms, the end its holder counts on \(sent \+ ttl of its last 200\), [\d.]+ ms early at least$/);
    // The same lone client on a correct service: no violation, and renewals went through.
    const ok = run('none', 1, { clients: 1, names: ['pump'] });
    expect(ok.violation).toBeUndefined();
    expect(ok.lw.stats.renewals).toBeGreaterThan(5);
  });

  it('with the engine\'s documented early end (earlyEndMs, pbft\'s agreed time): a lease that ends within it passes, one that ends earlier does not', () => {
    // early-expiry ends leases 10 % early: within a 2 s margin for ttls up to 20 s.
    const within = run('early-expiry', 1, { earlyEndMs: 2000, ttlMinMs: 6000, ttlMaxMs: 12_000 });
    expect(within.violation).toBeUndefined();
    expect(within.lw.stats.takeovers).toBeGreaterThan(0);
    expect(within.lw.stats.takeoverMinMs!).toBeLessThan(0);
    expect(within.lw.stats.takeoverMinMs!).toBeGreaterThanOrEqual(-2000);
    // Ended at a quarter of the ttl: beyond any margin shorter than the ttl.
    expect(run('short-lease', 1, { earlyEndMs: 2000, ttlMinMs: 6000, ttlMaxMs: 12_000 }).violation?.invariant).toMatch(/^lock-(mutual-exclusion|early-expiry)$/);
  });

  it('a 400 for a lock command: lock-bad-request', () => {
    expect(run('bad-request', 1).violation?.invariant).toBe('lock-bad-request');
  });

  it('a later grant with a token not above an earlier one: lock-token-growth', () => {
    expect(run('same-token', 1).violation?.invariant).toBe('lock-token-growth');
  });
});
