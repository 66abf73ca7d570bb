/**
 * Split-brain defenses in the runtime (issue 6): activation gate, lease, STONITH
 * through simulated relays and power-sense inputs, watchdog self-fencing, operator
 * confirmation. Every scenario runs in virtual time on a World and checks, after every
 * step of every node, that at most one node is active and that not every data board
 * is off because of fencing.
 */
import { describe, expect, it } from 'vitest';
import type { World } from '../../../firmware-sim/world.ts';
import type { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import type { ActivationEvent } from '../../../daemon/runtime/activation.ts';
import { fencedOff, simFencing, wireFencing, type FenceWiring, SIM_WATCHDOG_MS } from '../../../daemon/sim/fencing.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import type { NodeId } from '../../../src/types.ts';
import { testCluster, type TestCluster } from './helpers.ts';
import { ALIVE_WINDOW_MS } from '../../../daemon/runtime/leader-fencing.ts';

interface Rig {
  c: TestCluster;
  events: Array<{ node: NodeId; atMs: number } & ActivationEvent>;
  problems: string[];
  maxActive: number;
  live(): EngineRuntime[];
  activeNodes(): EngineRuntime[];
  /** Runs until exactly one node is active, other than `not` (bounded). */
  oneActive(maxMs?: number, not?: NodeId): EngineRuntime;
}

function rig(ids: NodeId[], o: { witnesses?: NodeId[]; stonith?: boolean; wire?: (w: World) => FenceWiring | null; seed?: number; waitForAll?: NodeId[] } = {}): Rig {
  const witnesses = o.witnesses ?? [];
  const data = ids.filter((i) => !witnesses.includes(i));
  let wiring: FenceWiring | null = null;
  const events: Rig['events'] = [];
  const problems: string[] = [];
  let c!: TestCluster;
  const live = () => [...c.rt.values()].filter((r) => r.state === 'running' && c.world.board(r.id).hal !== null && c.world.board(r.id).incarnation === incOf.get(r));
  const incOf = new Map<EngineRuntime, number>();
  const activeNodes = () => live().filter((r) => r.active);
  const r: Rig = {
    get c() {
      return c;
    },
    events,
    problems,
    maxActive: 0,
    live,
    activeNodes,
    oneActive: (maxMs = 10_000, not?: NodeId) => {
      expect(c.until(() => activeNodes().length === 1 && activeNodes()[0]!.id !== not, maxMs)).toBe(true);
      return activeNodes()[0]!;
    },
  };
  const check = () => {
    const n = activeNodes().length;
    r.maxActive = Math.max(r.maxActive, n);
    if (n > 1) problems.push(`${c.world.nowMs.toFixed(1)}: ${n} active`);
    if (data.length >= 2 && fencedOff(c.world, data).length === data.length) problems.push(`${c.world.nowMs.toFixed(1)}: every data board fenced off`);
  };
  c = testCluster(ids, {
    seed: o.seed ?? 3,
    witnesses,
    world: { board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } },
    wire: (w) => {
      wiring = o.wire ? o.wire(w) : o.stonith === false ? null : wireFencing(w, data);
    },
    perBoot: (hal) => ({
      fencing: { ...simFencing(hal, wiring), ...(o.waitForAll ? { activation: { waitForAll: o.waitForAll } } : {}) },
      observer: {
        booted: (rt) => incOf.set(rt, hal.incarnation),
        afterStep: check,
        activation: (rt, ev) => {
          events.push({ node: rt.id, ...ev, atMs: c.world.nowMs });
          check();
        },
      },
    }),
  });
  return r;
}

/** Cuts `node` off from everyone (broker on the other side). */
function isolate(w: World, node: NodeId, all: NodeId[]): void {
  w.partition([[node], [...all.filter((n) => n !== node), BROKER]]);
}

describe('activation gate in the runtime', () => {
  it('a first leader becomes active once its claim commits, with its no-op index as token; status shows elected and active', () => {
    const r = rig([1, 2, 3]);
    const l = r.oneActive(5000);
    const st = l.status();
    expect(st.elected).toBe(true);
    expect(st.active).toBe(true);
    expect(st.waitingFor).toBe('');
    expect(st.token).toBeGreaterThan(0);
    // the token is the index of the leader's no-op, a committed entry of its term
    expect(l.engine!.status().commitIndex).toBeGreaterThanOrEqual(st.token);
    const ev = r.events.find((e) => e.node === l.id && e.active)!;
    expect(ev.token).toBe(st.token);
    // followers: neither elected nor active, and they say why
    for (const f of r.live().filter((x) => x !== l)) expect(f.status()).toMatchObject({ elected: false, active: false });
    expect(r.problems).toEqual([]);
  });

  it('STONITH: an isolated active leader is fenced through its relay, verified off, and only then the new leader acts; the fenced board reboots and rejoins', () => {
    const ids = [1, 2, 3];
    const r = rig(ids);
    const old = r.oneActive(5000);
    const oldToken = old.activeToken;
    const t0 = r.c.world.nowMs;
    isolate(r.c.world, old.id, ids);
    const next = r.oneActive(10_000, old.id);
    expect(next.id).not.toBe(old.id);
    const v = next.status().activation!;
    expect(v.clearedBy[String(old.id)]).toBe('fenced');
    expect(next.activeToken).toBeGreaterThan(oldToken);
    // faster than the lease bound (≈ 3.2 s): fence delay ≤ 0.5 s random + 1 s priority + settle
    expect(r.c.world.nowMs - t0).toBeLessThan(3000);
    // the old leader's board lost power because of the fence
    expect(r.c.world.board(old.id).stats.powerLosses).toBeGreaterThanOrEqual(1);
    r.c.world.heal();
    // it is powered back on after 3 s, boots, and follows the new leader
    expect(r.c.until(() => r.live().some((x) => x.id === old.id && x.status().leader === next.id), 10_000)).toBe(true);
    // the fence is in the replicated history of every node, and in the log
    expect(r.c.until(() => r.live().every((x) => x.status().fences.history.some((f) => f.target === old.id && f.outcome === 'off' && f.by === next.id)), 5000)).toBe(true);
    expect(r.c.logs.some((l) => l.includes(`fence of n${old.id}: off`))).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.maxActive).toBe(1);
  });

  it('leases only (no STONITH): the new leader waits out the lease bound; locks answer 503 meanwhile; the isolated old leader self-fences by its watchdog', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { stonith: false });
    const old = r.oneActive(5000);
    isolate(r.c.world, old.id, ids);
    // The old leader stops acting on its own once its lease runs out…
    expect(r.c.until(() => !old.active, 1000)).toBe(true);
    const stoppedAt = r.c.world.nowMs;
    // …and a new one is elected but not active yet.
    expect(r.c.until(() => r.live().some((x) => x.id !== old.id && x.isLeader), 5000)).toBe(true);
    const next = r.live().find((x) => x.id !== old.id && x.isLeader)!;
    expect(r.c.until(() => next.status().activation?.wantFence !== undefined && next.status().token > 0, 2000)).toBe(true);
    if (!next.active) {
      expect(next.status().waitingFor).toMatch(/lease to expire/);
      const lock = r.c.call((cb) => next.lockAcquire('pump', 'me', 5000, 'lease-of-the-test-0000001', cb), 10);
      expect(lock?.status).toBe(503);
    }
    expect(r.c.until(() => next.active, 10_000)).toBe(true);
    expect(next.status().activation!.clearedBy[String(old.id)]).toBe('lease-expired');
    // lease bound: ≥ watchdog timeout after the old leader's last chance to act
    expect(r.c.world.nowMs - stoppedAt).toBeGreaterThan(SIM_WATCHDOG_MS * 0.9);
    // active now: locks are granted
    expect(r.c.call((cb) => next.lockAcquire('pump', 'me', 5000, 'lease-of-the-test-0000001', cb))?.status).toBe(200);
    // the old leader stopped feeding its watchdog and the board reset itself
    expect(r.c.until(() => r.c.world.board(old.id).stats.watchdogResets >= 1, 8000)).toBe(true);
    expect(r.c.logs.some((l) => l.includes('self-fencing'))).toBe(true);
    expect(r.problems).toEqual([]);
  });

  it('fencing an already dead board: power-sense says off, "already-off" is success, nothing is switched', () => {
    const ids = [1, 2, 3];
    const r = rig(ids);
    const old = r.oneActive(5000);
    const relaysBefore = r.c.world.relays.filter((x) => x.target.id === old.id).reduce((a, x) => a + x.commands, 0);
    r.c.world.board(old.id).setMains(false);
    const next = r.oneActive(10_000, old.id);
    expect(next.status().activation!.clearedBy[String(old.id)]).toBe('fenced');
    const rec = next.status().fences.local.find((f) => f.target === old.id)!;
    expect(rec.outcome).toBe('already-off');
    expect(r.c.world.relays.filter((x) => x.target.id === old.id).reduce((a, x) => a + x.commands, 0)).toBe(relaysBefore);
    expect(r.problems).toEqual([]);
  });

  it('a relay that fails: the fence fails and is reported; no activation before the lease bound', () => {
    const ids = [1, 2, 3];
    const r = rig(ids);
    const old = r.oneActive(5000);
    for (const x of r.c.world.relays) if (x.target.id === old.id) x.failCommands = true;
    const t0 = r.c.world.nowMs;
    isolate(r.c.world, old.id, ids);
    const next = r.oneActive(15_000, old.id);
    expect(next.status().activation!.clearedBy[String(old.id)]).toBe('lease-expired');
    expect(r.c.world.nowMs - t0).toBeGreaterThan(SIM_WATCHDOG_MS);
    const rec = next.status().fences.local.find((f) => f.target === old.id)!;
    expect(rec.outcome).toBe('failed');
    expect(rec.attempts.length).toBe(2); // one retry
    expect(rec.attempts[0]!.error).toMatch(/command failed/);
    expect(r.c.until(() => next.status().fences.history.some((f) => f.target === old.id && f.outcome === 'failed'), 3000)).toBe(true);
    expect(r.problems).toEqual([]);
  });

  it('a relay wired to the wrong board: verify (power-sense) catches it, the wrong board is switched back on, the leader waits for the lease', () => {
    const ids = [1, 2, 3];
    // Each controller's "relay:T" actually cuts the third board; "sense:T" reads T correctly.
    const r = rig(ids, {
      wire: (w) => {
        const m: FenceWiring = new Map();
        for (const a of ids) {
          m.set(a, []);
          for (const t of ids) {
            if (t === a) continue;
            const wrong = ids.find((x) => x !== a && x !== t)!;
            w.wireRelay(a, wrong, { name: `relay:${t}` });
            w.powerSense(a, t);
            m.get(a)!.push(t);
          }
        }
        return m;
      },
    });
    const old = r.oneActive(5000);
    isolate(r.c.world, old.id, ids);
    r.oneActive(20_000, old.id);
    // Some fence failed its verify: the relay read back off, the power-sense still saw the target powered.
    const recs = r.live().flatMap((x) => x.status().fences.local);
    expect(recs.some((f) => f.outcome === 'failed' && f.attempts.some((a) => /power-sense .* still reads the target powered .*relay wired to another board/.test(a.error ?? '')))).toBe(true);
    // Every board cut by mistake was switched back on (or rebooted): all rails live again after healing.
    r.c.world.heal();
    expect(r.c.until(() => ids.every((x) => r.c.world.board(x).railLive), 10_000)).toBe(true);
    expect(r.problems).toEqual([]);
  });

  it('a leader that hands over and stops (SIGTERM) once the new leader\'s first commit reached it: its answer clears it at once', () => {
    // The old leader transfers leadership and stops: not at the first sign of the new
    // leader — its answers then may not have left yet, and an answer from before the new
    // leadership's claim entry committed does not count — but once the new leader's
    // first commit reached it, so that it has answered a leader that knows whom it
    // replaced. (`quorumd start` waits longer, until the successor's activation reached
    // it: daemon/runtime/hand-over.ts, test/daemon/runtime/hand-over.test.ts; for Raft the
    // first commit is already enough, as this shows.)
    const ids = [1, 2, 3];
    const r = rig(ids, { stonith: false });
    const old = r.oneActive(5000);
    const to = ids.find((i) => i !== old.id)!;
    expect(old.transferLeadership(to).ok).toBe(true);
    expect(r.c.until(() => old.engine!.status().leader === to, 2000)).toBe(true);
    // Stay until the new leader's first commit reached it.
    const from = old.engine!.status().commitIndex;
    expect(r.c.until(() => old.engine!.status().commitIndex > from, 2000)).toBe(true);
    old.stop();
    const stoppedAt = r.c.world.nowMs;
    const next = r.live().find((x) => x.id === to)!;
    expect(r.c.until(() => next.active, 10_000)).toBe(true);
    expect(next.status().activation!.clearedBy[String(old.id)]).toBe('acknowledged');
    expect(r.c.world.nowMs - stoppedAt).toBeLessThan(SIM_WATCHDOG_MS / 2);
    expect(r.problems).toEqual([]);
  });

  it('operator confirmation: `fence confirm` clears a dead suspect at once (leases only)', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { stonith: false });
    const old = r.oneActive(5000);
    r.c.world.board(old.id).setMains(false);
    const cutAt = r.c.world.nowMs;
    expect(r.c.until(() => r.live().some((x) => x.isLeader), 5000)).toBe(true);
    const electedAt = r.c.world.nowMs;
    const next = r.live().find((x) => x.isLeader)!;
    expect(r.c.until(() => next.status().token > 0, 5000)).toBe(true);
    expect(next.active).toBe(false);
    // A node heard from within ALIVE_WINDOW_MS is alive: confirming it down is refused.
    if (r.c.world.nowMs - cutAt < ALIVE_WINDOW_MS - 100) expect(next.confirmFenced(old.id)).toMatchObject({ ok: false, alive: true });
    // The operator pulled the plug a moment ago. The window counts from the last frame
    // received, and a frame already on its way at the cut arrives up to one broker
    // latency (≤ 5 ms here) later: wait that much more than the window.
    r.c.world.run(Math.max(0, cutAt + ALIVE_WINDOW_MS + 50 - r.c.world.nowMs));
    // Silent for the window, but this leader has not led for the window yet: as a
    // follower it heard nobody but its leader, so a live node could look just as silent.
    expect(r.c.world.nowMs - electedAt).toBeLessThan(ALIVE_WINDOW_MS - 100);
    const early = next.confirmFenced(old.id);
    expect(early).toMatchObject({ ok: false, error: expect.stringMatching(/leads since \d+ ms only: it cannot tell yet whether n\d+ has been silent for 1000 ms; retry in \d+ ms/) });
    expect(early.alive).toBeUndefined();
    expect(early.notLeader).toBeUndefined();
    // Drift between the board's clock and the world's: a little more than the window.
    r.c.world.run(Math.max(0, electedAt + ALIVE_WINDOW_MS + 100 - r.c.world.nowMs));
    expect(next.active).toBe(false);
    expect(next.status().fences.history.some((f) => f.outcome === 'confirmed')).toBe(false);
    const t0 = r.c.world.nowMs;
    // The answer says what happened: recorded, no fence was running, and the leader is active
    // now; and what the leader knew, as bully's coordinator says it: when it last heard the
    // node (before the cut, or never: it may have been elected after the cut), and how long
    // it had been leading.
    const ok = next.confirmFenced(old.id);
    expect(ok).toEqual({ ok: true, superseded: false, active: true, waitingFor: '', lastHeardMs: expect.toBeOneOf([null, expect.any(Number)]), listenedMs: expect.any(Number) });
    if (ok.lastHeardMs !== null) expect(ok.lastHeardMs).toBeGreaterThanOrEqual(r.c.world.nowMs - cutAt - 50);
    expect(ok.listenedMs).toBeGreaterThanOrEqual(ALIVE_WINDOW_MS);
    expect(ok.listenedMs).toBeLessThanOrEqual(r.c.world.nowMs - electedAt + 100);
    // active as soon as its own lease round is acknowledged, long before the lease bound (≈ 3.2 s)
    expect(r.c.until(() => next.active, 300)).toBe(true);
    expect(r.c.world.nowMs - t0).toBeLessThan(300);
    expect(next.status().activation!.clearedBy[String(old.id)]).toBe('operator');
    expect(r.c.until(() => next.status().fences.history.some((f) => f.outcome === 'confirmed' && f.target === old.id), 2000)).toBe(true);
    // Recorded with the term of the leadership that took it.
    expect(next.status().fences.history.find((f) => f.outcome === 'confirmed')!.term).toBe(next.status().term);
    // bad input is named
    expect(next.confirmFenced(0 as NodeId).error).toMatch(/node id 1..254/);
    expect(next.confirmFenced(next.id).ok).toBe(false);
    let res: { ok: boolean; error?: string } | undefined;
    next.fence(old.id, (x) => (res = x));
    expect(res?.error).toMatch(/no fence device/);
  });

  it('operator confirmation through a follower: refused (it hears only its leader), nothing recorded; the leader refuses the live node as alive', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { stonith: false });
    const leader = r.oneActive(5000);
    // Long past the window: the followers have not heard each other all that time (Raft
    // followers talk to the leader only), and both are running.
    r.c.world.run(3 * ALIVE_WINDOW_MS);
    const [f, g] = r.live().filter((x) => x.id !== leader.id);
    expect(f && g && leader.isLeader).toBe(true);
    const viaFollower = f!.confirmFenced(g!.id);
    expect(viaFollower).toMatchObject({ ok: false, notLeader: true });
    expect(viaFollower.error).toBe(`n${f!.id} is not the leader (n${leader.id} is): a follower hears only its leader, so it cannot tell whether n${g!.id} is alive; confirm on the leader n${leader.id}`);
    // The leader follows both and refuses the same request as alive; the leader itself is alive to its followers.
    expect(leader.confirmFenced(g!.id)).toMatchObject({ ok: false, alive: true });
    expect(f!.confirmFenced(leader.id)).toMatchObject({ ok: false, alive: true });
    // Nothing reached the replicated fence history.
    r.c.world.run(500);
    for (const x of r.live()) expect(x.status().fences.history.filter((h) => h.outcome === 'confirmed')).toEqual([]);
    expect(r.problems).toEqual([]);
  });
});

describe('two boards and a witness', () => {
  it('first start waits for all: a leader elected with the witness alone neither acts nor fences until the other board was seen once; formed survives a restart', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { witnesses: [3], waitForAll: [1, 2] });
    r.c.world.board(2).setMains(false); // board 2 is not there at the first start
    expect(r.c.until(() => r.live().some((x) => x.isLeader), 8000)).toBe(true);
    r.c.world.run(6000); // far past the lease bound (3 s watchdog in the sim)
    const l = r.live().find((x) => x.isLeader)!;
    expect(l.id).toBe(1);
    expect(r.activeNodes()).toEqual([]);
    expect(l.status().waitingFor).toMatch(/first start: every node of fencing.waitForAll must be seen once \(not seen yet: 2\)/);
    expect(r.live().flatMap((x) => x.status().fences.local)).toEqual([]); // no fence at first start
    expect(fencedOff(r.c.world, [2])).toEqual([]); // board 2 is down by its mains, never by a relay
    r.c.world.board(2).setMains(true);
    const a = r.oneActive(10_000);
    expect(a.status().waitingFor).toBe('');
    // Formed is persisted (a few ms of fsync later): with board 2 gone again, a
    // restarted board 1 does not wait for it.
    r.c.world.run(1000);
    r.c.world.board(2).setMains(false);
    r.c.world.board(1).setMains(false);
    r.c.world.run(500);
    r.c.world.board(1).setMains(true);
    const again = r.oneActive(20_000);
    expect(again.id).toBe(1);
    expect(r.problems).toEqual([]);
  });

  it('a witness that is down: the two boards still elect; split apart, neither leads, nobody is fenced', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { witnesses: [3] });
    r.c.world.board(3).setMains(false);
    const l = r.oneActive(8000);
    expect(l.id).not.toBe(3);
    r.c.world.partition([[1], [2, BROKER]]);
    expect(r.c.until(() => r.activeNodes().length === 0, 2000)).toBe(true);
    r.c.world.run(8000);
    expect(r.activeNodes()).toEqual([]);
    expect(r.live().flatMap((x) => x.status().fences.local)).toEqual([]);
    expect(fencedOff(r.c.world, [1, 2])).toEqual([]);
    r.c.world.heal();
    r.oneActive(8000);
    expect(r.problems).toEqual([]);
  });

  it('fence race: flapping partitions between the boards never leave both off and never two active', () => {
    const ids = [1, 2, 3];
    const r = rig(ids, { witnesses: [3], seed: 11 });
    r.oneActive(8000);
    let fences = 0;
    for (let i = 0; i < 12; i++) {
      const a = i % 2 === 0 ? 1 : 2;
      // healed briefly so that the other board catches up and can win the witness's vote
      r.c.world.heal();
      r.c.world.run(400);
      r.c.world.partition([[a, 3, BROKER], [a === 1 ? 2 : 1]]);
      r.c.world.run(1000 + (i % 3) * 800);
      fences = Math.max(fences, r.live().reduce((n, x) => n + x.status().fences.local.length, 0));
    }
    r.c.world.heal();
    r.oneActive(20_000);
    expect(fences).toBeGreaterThan(0); // the scenario did make the boards fence
    expect(r.problems).toEqual([]);
    expect(r.maxActive).toBe(1);
  });
});
