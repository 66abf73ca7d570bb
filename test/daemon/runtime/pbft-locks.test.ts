/**
 * Engine pbft, locks at the agreed time (daemon/runtime/pbft-time.ts, src/pbft/agreed-time.ts)
 * on four simulated boards in virtual time: a lock is granted with a fencing token, a second
 * owner is refused while it is live and gets it (with a larger token) once the agreed time
 * passed its expiry; every replica holds the same agreed time and lock state; the clock
 * survives a snapshot; the time pauses while no lock is live.
 */
import { describe, expect, it } from 'vitest';
import { pbftWorld } from '../../helpers/pbft-world.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';
import type { NodeId } from '../../../src/types.ts';
import type { PbftNode } from '../../../src/pbft/pbft.ts';
import { decodeCommand, encodeCommand, KvStateMachine, leaseDigest } from '../../../src/kv/index.ts';
import { ClientTable, decodePbftState, encodePbftState } from '../../../daemon/runtime/pbft-clients.ts';
import { PbftTime } from '../../../daemon/runtime/pbft-time.ts';
import { encodeTimeReport } from '../../../src/pbft/agreed-time.ts';

const IDS: NodeId[] = [1, 2, 3, 4];
const LEASE_A = 'a'.repeat(22);
const LEASE_B = 'b'.repeat(22);

function cluster(seed = 7) {
  const c = pbftWorld({ seed, keyText: 'pbft-locks-test', ids: IDS });
  c.world.runUntil(() => IDS.every((n) => c.rt.get(n)?.state === 'running'), 5000);
  return c;
}

describe('pbft agreed time in one runtime (pbft-time.ts)', () => {
  it('stamps lock.acquire and lock.renew with T, leaves other commands as they are; the clock rides in the snapshot', () => {
    const t = new PbftTime(IDS, 1);
    t.applyReport(1, encodeTimeReport(5000));
    t.applyReport(2, encodeTimeReport(4000));
    t.applyReport(3, encodeTimeReport(1e9)); // the 2nd largest is 5000
    t.applyReport(undefined, encodeTimeReport(7));
    expect(t.nowMs).toBe(5000);
    expect(t.badReports).toBe(1);
    const acq = encodeCommand({ op: 'lock.acquire', name: 'n', owner: 'o', ttlMs: 10, now: 999_999, lease: leaseDigest(LEASE_A) }) as Uint8Array;
    expect(decodeCommand(t.stamp(acq))).toMatchObject({ op: 'lock.acquire', now: 5000 });
    const ren = encodeCommand({ op: 'lock.renew', name: 'n', lease: leaseDigest(LEASE_A), now: 0 }) as Uint8Array;
    expect(decodeCommand(t.stamp(ren))).toMatchObject({ op: 'lock.renew', now: 5000 });
    const put = encodeCommand({ op: 'put', key: 'k', value: new Uint8Array([1]) }) as Uint8Array;
    expect(t.stamp(put)).toBe(put);
    // Snapshot: without a clock byte for byte the KV snapshot; with one, it comes back.
    const kv = new KvStateMachine().snapshot();
    expect(encodePbftState(kv, new ClientTable(), undefined, undefined)).toEqual(kv);
    const st = decodePbftState(encodePbftState(kv, new ClientTable(), undefined, t.encode()));
    if (typeof st === 'string') throw new Error(st);
    expect(st.fences).toBeUndefined();
    const u = new PbftTime(IDS, 1);
    expect(u.restore(st.clock)).toBeUndefined();
    expect(u.nowMs).toBe(5000);
    expect(Buffer.from(u.encode()!)).toEqual(Buffer.from(t.encode()!));
    // Beside a fence tally (version 3 carries both; version 2, the tally alone, stays as it was).
    const tally = new Uint8Array([0x82, 1, 2]);
    const both = decodePbftState(encodePbftState(kv, new ClientTable(), tally, t.encode()));
    if (typeof both === 'string') throw new Error(both);
    expect(both.fences).toEqual(tally);
    expect(Buffer.from(both.clock!)).toEqual(Buffer.from(t.encode()!));
    const v2 = encodePbftState(kv, new ClientTable(), tally, undefined);
    expect(v2[0]).toBe(0x85);
    const only = decodePbftState(v2);
    if (typeof only === 'string') throw new Error(only);
    expect(only.fences).toEqual(tally);
    expect(only.clock).toBeUndefined();
  });
});

describe('pbft locks at the agreed time', () => {
  it('grants with a token, refuses a second owner while live, grants it after expiry; replicas agree', () => {
    const c = cluster();
    const a = c.call((cb) => c.rt.get(1)!.lockAcquire('door', 'alice', 3000, LEASE_A, cb));
    expect(a?.status, a?.error).toBe(200);
    expect(a?.token).toBeGreaterThan(0);
    expect(a?.pbftF).toBe(1);
    expect(a?.pbft?.reply).toBeDefined();
    const b = c.call((cb) => c.rt.get(2)!.lockAcquire('door', 'bob', 3000, LEASE_B, cb));
    expect(b?.status).toBe(409);
    expect(b?.holder).toBe('alice');
    // The time lines run while the lock is live: reports move the agreed time.
    const t0 = c.rt.get(1)!.pbftLockTime!.agreedMs;
    c.world.run(1500);
    expect(c.rt.get(1)!.pbftLockTime!.running).toBe(true);
    expect(c.rt.get(1)!.pbftLockTime!.agreedMs).toBeGreaterThan(t0);
    // Renew by the holder (at n3): the lease runs on from the agreed time.
    const r = c.call((cb) => c.rt.get(3)!.lockRenew('door', LEASE_A, cb));
    expect(r?.status, r?.error).toBe(200);
    expect(r?.token).toBe(a!.token);
    const renewedAt = c.world.nowMs;
    // Bob polls (bounded) until the agreed time passed the renewed expiry.
    let got: ClientResult | undefined;
    for (let i = 0; i < 40 && got?.status !== 200; i++) {
      c.world.run(500);
      got = c.call((cb) => c.rt.get(2)!.lockAcquire('door', 'bob', 3000, LEASE_B, cb));
    }
    expect(got?.status, got?.error).toBe(200);
    expect(got!.token).toBeGreaterThan(a!.token!);
    // In virtual time, honest replicas let the lease run its TTL give or take one report
    // period (1 s) and the 500 ms poll of this test.
    const heldMs = c.world.nowMs - renewedAt;
    expect(heldMs).toBeGreaterThanOrEqual(3000 - 1000);
    expect(heldMs).toBeLessThanOrEqual(3000 + 2000 + 500);
    // Expiry came no earlier than the TTL after the renewal on the agreed time line.
    expect(got!.expiresAt! - 3000).toBeGreaterThanOrEqual(r!.expiresAt!);
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)!.stateMachine.appliedIndex === c.rt.get(2)!.stateMachine.appliedIndex), 5000);
    const states = IDS.map((n) => JSON.stringify({ t: c.rt.get(n)!.pbftLockTime!.agreedMs, l: c.rt.get(n)!.stateMachine.lockList(0).map((l) => [l.name, l.owner, l.token, l.expiresAt]) }));
    expect(new Set(states).size).toBe(1);
    // Released: no live lock, the time lines pause and nobody reports any more.
    expect(c.call((cb) => c.rt.get(4)!.lockRelease('door', LEASE_B, cb))?.status).toBe(200);
    c.world.run(2000);
    const paused = IDS.map((n) => c.rt.get(n)!.pbftLockTime!);
    c.world.run(10_000);
    for (const [i, n] of IDS.entries()) {
      const now = c.rt.get(n)!.pbftLockTime!;
      expect(now.running).toBe(false);
      expect(now.agreedMs).toBe(paused[i]!.agreedMs);
      expect(now.reports).toBe(paused[i]!.reports);
    }
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('the agreed clock is in the checkpointed state: a replica that caught up by state transfer judges the lock alike', () => {
    const c = cluster(11);
    c.world.partition([[1, 2, 3], [4]]);
    const a = c.call((cb) => c.rt.get(1)!.lockAcquire('pump', 'alice', 60_000, LEASE_A, cb));
    expect(a?.status, a?.error).toBe(200);
    // Reports and writes carry the others past stable checkpoints (interval 4).
    c.world.run(5000);
    for (let i = 0; i < 12; i++) expect(c.call((cb) => c.rt.get(2)!.put(`k${i}`, new Uint8Array([i]), {}, cb))?.status).toBe(200);
    c.world.heal();
    const target = c.rt.get(1)!.stateMachine.appliedIndex;
    const caughtUp = c.world.runUntil(() => c.rt.get(4)!.snapshotIndex > a!.token! && c.rt.get(4)!.stateMachine.appliedIndex >= target, 30_000);
    expect(caughtUp, `n4 snapshot ${c.rt.get(4)!.snapshotIndex} applied ${c.rt.get(4)!.stateMachine.appliedIndex}, target ${target}, grant ${a!.token}; ${c.fatals.join('; ')}`).toBe(true);
    expect(c.rt.get(4)!.pbftLockTime!.agreedMs).toBeGreaterThan(0);
    // Node 4 judges at the agreed time it got in the snapshot: the lock is held.
    const b = c.call((cb) => c.rt.get(4)!.lockAcquire('pump', 'bob', 1000, LEASE_B, cb));
    expect(b?.status).toBe(409);
    expect(b?.holder).toBe('alice');
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)!.stateMachine.appliedIndex === c.rt.get(4)!.stateMachine.appliedIndex), 5000);
    const t = IDS.map((n) => c.rt.get(n)!.pbftLockTime!.agreedMs);
    expect(new Set(t).size).toBe(1);
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('a lying origin\'s now is ignored: a lock it proposes with a far-future time executes at the agreed time', () => {
    const c = cluster(13);
    const a = c.call((cb) => c.rt.get(1)!.lockAcquire('gate', 'alice', 5000, LEASE_A, cb));
    expect(a?.status, a?.error).toBe(200);
    c.world.run(3000);
    // Node 2 proposes raw lock commands as origin, past the runtime: `now` a day ahead, then 0.
    const eng = c.rt.get(2)!.engine as PbftNode;
    const T = c.rt.get(2)!.pbftLockTime!.agreedMs;
    const steal = encodeCommand({ op: 'lock.acquire', name: 'gate', owner: 'mallory', ttlMs: 5000, now: T + 86_400_000, lease: leaseDigest(LEASE_B) }) as Uint8Array;
    const forever = encodeCommand({ op: 'lock.acquire', name: 'well', owner: 'mallory', ttlMs: 5000, now: T + 86_400_000, lease: leaseDigest(LEASE_B) }) as Uint8Array;
    expect(eng.propose(steal).ok).toBe(true);
    expect(eng.propose(forever).ok).toBe(true);
    const applied = c.rt.get(1)!.stateMachine.appliedIndex;
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)!.stateMachine.appliedIndex >= applied + 2), 10_000);
    for (const n of IDS) {
      const sm = c.rt.get(n)!.stateMachine;
      expect(sm.getLock('gate', 0)?.owner).toBe('alice'); // not stolen by a time in the future
      const well = sm.getLock('well', 0)!;
      expect(well.owner).toBe('mallory');
      expect(well.expiresAt).toBeLessThanOrEqual(c.rt.get(n)!.pbftLockTime!.agreedMs + 5000); // not a day long
      expect(sm.clockMs).toBeLessThan(T + 86_400_000);
    }
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('a client\'s lock request retried on another node executes once (a retried release answers 200, not 409)', () => {
    const c = cluster(17);
    const id = new Uint8Array(16).fill(3);
    const cmd = { op: 'lock.acquire' as const, name: 'valve', owner: 'alice', ttlMs: 60_000, now: 0, lease: leaseDigest(LEASE_A) };
    const first = c.call((cb) => c.rt.get(1)!.pbftLock(cmd, { id, seq: 1 }, cb));
    expect(first?.status, first?.error).toBe(200);
    expect(first?.pbft?.reply).toBeDefined();
    // Another owner is refused.
    const bob = c.call((cb) => c.rt.get(4)!.pbftLock({ ...cmd, owner: 'bob', lease: leaseDigest(LEASE_B) }, { id: new Uint8Array(16).fill(4), seq: 1 }, cb));
    expect(bob?.status).toBe(409);
    expect(bob?.holder).toBe('alice');
    // Release (seq 2), then the client retries it on another node: executed again it would
    // find no grant (409); executed once, the retry answers the recorded 200.
    const rel = { op: 'lock.release' as const, name: 'valve', lease: leaseDigest(LEASE_A) };
    expect(c.call((cb) => c.rt.get(1)!.pbftLock(rel, { id, seq: 2 }, cb))?.status).toBe(200);
    const retry = c.call((cb) => c.rt.get(3)!.pbftLock(rel, { id, seq: 2 }, cb));
    expect(retry?.status, retry?.error).toBe(200);
    // The same release as a new request (seq 3) does execute: the lock is gone.
    expect(c.call((cb) => c.rt.get(2)!.pbftLock(rel, { id, seq: 3 }, cb))?.status).toBe(409);
    // Every node signed the same reply for (client, 1).
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)!.pbftClientReply(id, 1) !== undefined), 5000);
    const results = IDS.map((n) => Buffer.from(c.rt.get(n)!.pbftClientReply(id, 1)!.result).toString('hex'));
    expect(new Set(results).size).toBe(1);
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('a lying member that reports a time a day ahead, every 300 ms, does not end another holder\'s lease early', () => {
    const c = cluster(19);
    const a = c.call((cb) => c.rt.get(1)!.lockAcquire('hatch', 'alice', 8000, LEASE_A, cb));
    expect(a?.status, a?.error).toBe(200);
    const grantedAt = c.world.nowMs;
    const t0 = c.rt.get(1)!.pbftLockTime!.agreedMs;
    const liar = c.rt.get(4)!.engine as PbftNode;
    let got: ClientResult | undefined;
    let lies = 0;
    for (let i = 0; i < 60 && got?.status !== 200; i++) {
      const T = c.rt.get(4)!.pbftLockTime!.agreedMs;
      if (liar.propose(encodeTimeReport(T + 86_400_000)).ok) lies++;
      c.world.run(300);
      if (i % 2 === 1) got = c.call((cb) => c.rt.get(2)!.lockAcquire('hatch', 'bob', 8000, LEASE_B, cb));
    }
    expect(lies).toBeGreaterThan(10);
    expect(got?.status, got?.error).toBe(200);
    // Not before ttl − P − C (P = 1 s, C = 2 s), and not much after the ttl either.
    const heldMs = c.world.nowMs - grantedAt;
    expect(heldMs).toBeGreaterThanOrEqual(8000 - 1000 - 2000);
    expect(heldMs).toBeLessThanOrEqual(8000 + 2000 + 600);
    // The agreed time ran no faster than real time plus the cap: the day-ahead reports did not count.
    for (const n of IDS) expect(c.rt.get(n)!.pbftLockTime!.agreedMs - t0).toBeLessThanOrEqual(c.world.nowMs - grantedAt + 2000);
    expect(c.fatals).toEqual([]);
  }, 60_000);
});
