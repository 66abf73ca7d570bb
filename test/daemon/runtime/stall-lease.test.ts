/**
 * A leader that was stopped (SIGSTOP, a GC pause, a write stuck on an SD card) resumes
 * with its engine's tick count behind real time: RaftNode counts its read lease in
 * ticks. The runtime drops the lease when a tick comes late, so a read it answers after
 * the resume never misses a write a newer leader committed meanwhile (issue 12, found by
 * the stall sweep). Virtual time; the stall is firmware-sim's Board.stall.
 */
import { describe, expect, it } from 'vitest';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import { simFencing, SIM_WATCHDOG_MS } from '../../../daemon/sim/fencing.ts';
import type { ClientResult } from '../../../daemon/runtime/index.ts';
import { testCluster } from './helpers.ts';

describe('lease reads across a stall', () => {
  it('a stopped leader resumes, cut off from a newer leader that wrote: its read is not served from the old lease', () => {
    const ids = [1, 2, 3];
    // Leases only, no STONITH (no relay wiring): the old leader must survive to answer.
    const c = testCluster(ids, {
      seed: 11,
      world: { board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } },
      perBoot: (hal) => ({ fencing: simFencing(hal, null) }),
    });
    const enc = new TextEncoder();
    expect(c.until(() => c.leader()?.active === true, 10_000)).toBe(true);
    const old = c.leader()!;
    expect(c.call((cb) => old.put('k', enc.encode('old'), {}, cb))?.status).toBe(200);
    c.world.run(300); // heartbeats: the old leader holds a fresh read lease
    // It stops for 1 s; meanwhile it is cut off and the others elect and write.
    expect(c.world.board(old.id).stall(1000)).toBe(true);
    c.world.partition([[old.id], [...ids.filter((i) => i !== old.id), BROKER]]);
    let read: ClientResult | undefined;
    // A client's read reaches the stopped process at once and waits in its socket.
    c.world.board(old.id).deliver(() => old.get('k', {}, (r) => (read = r)));
    c.world.run(900);
    const next = c.leaders().find((r) => r.id !== old.id);
    expect(next).toBeDefined();
    expect(c.call((cb) => next!.put('k', enc.encode('new'), {}, cb))?.status).toBe(200);
    // The stall ends: the held tick, then the held read.
    expect(c.until(() => read !== undefined, 5000)).toBe(true);
    // Never the old value: the read was not served from the lease (503: no quorum to confirm it).
    expect(read!.status).not.toBe(200);
    expect(read!.status).toBe(503);
  });
});
