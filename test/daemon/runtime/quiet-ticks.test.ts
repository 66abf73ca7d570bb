/**
 * Quiet ticks (EngineRuntimeOptions.quietTicks, issue 14: idle CPU): the runtime sleeps
 * through the ticks the engine says would only count and makes them up before the next
 * input. What must hold:
 *   - an idle node wakes far less often than every tickMs (the point of it);
 *   - the engine sees the same ticks between the same inputs: the same seed gives the
 *     same elections, leaders, activations and fences, at the same virtual times, with
 *     quiet ticks as without — through a leader crash, a cut-off active leader (its own
 *     lease ends, the next leader fences it) and client writes;
 *   - a tick that comes late (a stalled process) still lets waiting input in first.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { SIM_WATCHDOG_MS, simFencing, wireFencing } from '../../../daemon/sim/fencing.ts';
import type { NodeId } from '../../../src/types.ts';
import { KEY, bytes, stallableClock } from './helpers.ts';

const IDS: NodeId[] = [1, 2, 3];
/** The board defaults of daemon/config/schema.ts (heartbeat 100 ms, election 1000..2000 ms, tick 10 ms). */
const BOARD = { tickMs: 10, heartbeatMs: 100, electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000 };


function cluster(quietTicks: boolean, seed: number, opts: { fencing?: boolean; leaseMs?: number; engineOptions?: Record<string, unknown> } = {}) {
  const world = new World({ seed, board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } });
  for (const id of IDS) world.addBoard(id);
  const wiring = opts.fencing ? wireFencing(world, IDS) : null;
  const rts = new Map<NodeId, EngineRuntime>();
  const clocks = new Map<NodeId, ReturnType<typeof stallableClock>>();
  /** Everything that shows the protocol's course, with its virtual time. */
  const trace: string[] = [];
  const last = new Map<NodeId, string>();
  world.onBoot((hal, board) => {
    const c = stallableClock(hal.clock);
    clocks.set(hal.node, c);
    const rt = new EngineRuntime({
      engine: 'raft',
      id: hal.node,
      config: { voters: IDS, learners: [], witnesses: [] },
      cluster: 5,
      keyring: KEY,
      clock: c.clock,
      storage: hal.storage,
      links: hal.links,
      rng: world.rng.fork(`quiet:${hal.node}:${hal.incarnation}`),
      engineOptions: opts.engineOptions ?? BOARD,
      ...(opts.fencing ? { fencing: { ...simFencing(hal, wiring), ...(opts.leaseMs ? { activation: { leaseMs: opts.leaseMs, selfFenceAfterMs: 2550 } } : {}) } } : {}),
      quietTicks,
      onFatal: () => board.crashProcess(),
      observer: {
        booted: (r) => {
          trace.push(`${world.nowMs.toFixed(3)} n${r.id} booted`);
          const s = r.status();
          last.set(r.id, `${s.role} t${s.term} l${s.leader} c${s.commitIndex}`);
        },
        afterStep: (r) => {
          const s = r.status();
          const k = `${s.role} t${s.term} l${s.leader} c${s.commitIndex}`;
          if (last.get(r.id) !== k) {
            last.set(r.id, k);
            trace.push(`${world.nowMs.toFixed(3)} n${r.id} ${k}`);
          }
        },
        fenced: (r, rec) => trace.push(`${world.nowMs.toFixed(3)} n${r.id} fenced n${rec.target} ${rec.outcome}`),
      },
    });
    rt.onActivation((ev) => trace.push(`${world.nowMs.toFixed(3)} n${hal.node} active=${ev.active} token ${ev.token}`));
    rts.set(hal.node, rt);
    rt.start();
  });
  const live = () => [...rts.values()].filter((r) => r.state === 'running' && world.board(r.id).hal !== null);
  const leader = () => live().find((r) => r.isLeader);
  return { world, rts, clocks, trace, live, leader };
}

type Cluster = ReturnType<typeof cluster>;

/**
 * The same events in the same order, each at about the same virtual time: the simulated
 * boards charge CPU time per wake-up, so fewer wake-ups move later events by microseconds.
 */
function expectSameCourse(quiet: string[], plain: string[]): void {
  const what = (t: string[]) => t.map((l) => l.slice(l.indexOf(' ') + 1));
  expect(what(quiet)).toEqual(what(plain));
  for (let i = 0; i < plain.length; i++) {
    const dt = Math.abs(parseFloat(quiet[i]!) - parseFloat(plain[i]!));
    expect(dt, `${quiet[i]} / ${plain[i]}`).toBeLessThan(2);
  }
}

function put(c: Cluster, key: string, value: string): number | undefined {
  let status: number | undefined;
  c.leader()?.put(key, bytes(value), {}, (r) => (status = r.status));
  c.world.runUntil(() => status !== undefined, 5000);
  return status;
}

describe('quiet ticks', () => {
  it('an idle follower wakes for heartbeats and about once a second, not every tick; the leader about once per heartbeat', () => {
    const wakes = (quiet: boolean) => {
      const c = cluster(quiet, 11);
      expect(c.world.runUntil(() => c.leader() !== undefined, 20_000)).toBe(true);
      c.world.run(2000); // settle
      for (const k of c.clocks.values()) k.delays.length = 0;
      c.world.run(5000);
      const l = c.leader()!;
      const follower = c.live().find((r) => r !== l)!;
      // Still one leader, the same one: nothing timed out.
      expect(c.leader()).toBe(l);
      return { leader: c.clocks.get(l.id)!.delays.length, follower: c.clocks.get(follower.id)!.delays.length };
    };
    const plain = wakes(false);
    const quiet = wakes(true);
    // Without quiet ticks: a timer every 10 ms (about 500 in 5 s).
    expect(plain.follower).toBeGreaterThan(400);
    expect(plain.leader).toBeGreaterThan(400);
    // With: the follower's timer only at the 1 s cap; the leader's once per 100 ms heartbeat.
    expect(quiet.follower).toBeLessThanOrEqual(10);
    expect(quiet.leader).toBeGreaterThanOrEqual(40);
    expect(quiet.leader).toBeLessThanOrEqual(60);
  });

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: the same course with quiet ticks as without — elections, writes, a crashed leader, a cut-off active leader fenced`, () => {
      const run = (quiet: boolean) => {
        const c = cluster(quiet, seed, { fencing: true });
        expect(c.world.runUntil(() => c.live().some((r) => r.active), 30_000)).toBe(true);
        for (let i = 0; i < 5; i++) expect(put(c, `k${i}`, `v${i}`)).toBe(200);
        c.world.run(3000);
        // A crash: the leader's process dies (restarts 100 ms later, a follower then).
        const first = c.leader()!;
        c.world.board(first.id).crashProcess(3000);
        expect(c.world.runUntil(() => c.live().some((r) => r.active && r.id !== first.id), 30_000)).toBe(true);
        for (let i = 5; i < 8; i++) expect(put(c, `k${i}`, `v${i}`)).toBe(200);
        c.world.run(5000);
        // A cut-off active leader: its own lease ends it; the next one fences it first.
        const cut = c.live().find((r) => r.active)!;
        c.world.partition([[cut.id], [...IDS.filter((i) => i !== cut.id), BROKER]]);
        expect(c.world.runUntil(() => c.live().some((r) => r.active && r.id !== cut.id), 30_000)).toBe(true);
        c.world.heal();
        c.world.run(10_000);
        return c.trace;
      };
      const plain = run(false);
      const quiet = run(true);
      expect(plain.some((l) => / fenced n\d off/.test(l)), plain.join('\n')).toBe(true);
      expectSameCourse(quiet, plain);
    });
  }

  it('a leader whose followers fall silent (its own link stays up) stops being active when its own lease ends, as without quiet ticks; its self-fence resets the board as before', () => {
    const run = (quiet: boolean) => {
      // Lease 550 ms, below the election timeout: only the lease ends the activity, at a
      // time no message marks (check-quorum steps down later) and between two heartbeats
      // (a round is sent every 100 ms); the self-fence after 2550 ms (after check-quorum made it a follower).
      const c = cluster(quiet, 5, { fencing: true, leaseMs: 550 });
      expect(c.world.runUntil(() => c.live().some((r) => r.active), 30_000)).toBe(true);
      c.world.run(3000);
      const l = c.live().find((r) => r.active)!;
      const others = IDS.filter((i) => i !== l.id);
      const cutAt = c.world.nowMs;
      c.world.partition([[l.id, BROKER], others]);
      expect(c.world.runUntil(() => !l.active, 5000)).toBe(true);
      const offAt = c.world.nowMs;
      c.world.run(9000); // the self-fence (2.55 s without activity) and the watchdog reset (3 s)
      c.world.heal();
      c.world.run(5000);
      return { trace: c.trace, offAfterMs: offAt - cutAt };
    };
    const plain = run(false);
    const quiet = run(true);
    // At the lease's end (a heartbeat round at most 100 ms before the cut, plus a tick).
    expect(quiet.offAfterMs).toBeGreaterThan(440);
    expect(quiet.offAfterMs).toBeLessThan(570);
    expect(plain.trace.filter((l) => l.endsWith('booted')).length, plain.trace.join('\n')).toBeGreaterThan(3);
    expectSameCourse(quiet.trace, plain.trace);
  });

  it('the same course with the engine defaults (heartbeat 50 ms, election 150..300 ms) through partitions', () => {
    const run = (quiet: boolean) => {
      const c = cluster(quiet, 7, { engineOptions: { tickMs: 10 } });
      expect(c.world.runUntil(() => c.leader() !== undefined, 20_000)).toBe(true);
      for (let round = 0; round < 4; round++) {
        const l = c.leader();
        if (l) c.world.partition([[l.id], [...IDS.filter((i) => i !== l.id), BROKER]]);
        c.world.run(1500);
        c.world.heal();
        c.world.run(1500);
        put(c, `r${round}`, 'x');
      }
      return c.trace;
    };
    const plain = run(false);
    expect(plain.length).toBeGreaterThan(10);
    expectSameCourse(run(true), plain);
  });

  it('a late tick (a stalled process) still lets waiting input in first: one 0 ms timer, and the cluster keeps its leader', () => {
    const c = cluster(true, 4);
    expect(c.world.runUntil(() => c.leader() !== undefined, 20_000)).toBe(true);
    c.world.run(2000);
    const l = c.leader()!;
    const k = c.clocks.get(l.id)!;
    k.delays.length = 0;
    k.jump(500); // the leader's next wake finds its due time 500 ms in the past
    c.world.run(300);
    expect(k.delays.filter((d) => d === 0)).toHaveLength(1);
    c.world.run(3000);
    expect(c.leader()).toBe(l);
  });
});
