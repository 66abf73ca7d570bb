/**
 * Split-brain defenses in the simulator (docs/fencing.md, docs/sim.md, issue 6 point 7):
 *
 *   - wiring: GPIO relays in every data board's supply, driven by the other data
 *     boards (all-to-all up to 3 data boards, a ring of both neighbours beyond), each
 *     with a power-sense input on the same controller; a witness neither fences nor is
 *     fenced (it never leads, and it holds no data);
 *   - the runtime's fencing options per board (`simFencing`): activation gate and lease
 *     always, STONITH targets unless `--no-stonith`, the board's watchdog;
 *   - `SimActuator`: the outside world. Every active leader drives it every
 *     ACTUATE_EVERY_MS with its fencing token; it records every command and counts
 *     `stale_actuations` (a command carried out although a newer leadership epoch —
 *     a higher token handed to an activation — already existed), `dual_active_ms`
 *     (virtual time with two active leaders), and the failover gaps (time without an
 *     active leader after there had been one);
 *   - per-step invariants: fencing tokens only grow (activation tokens, in the order the
 *     activations happen), never two active leaders at the same instant (Raft), and
 *     never every data board off at once because of fencing (mains on, rail dead).
 */
import type { World } from '../../firmware-sim/world.ts';
import type { Board, BoardHal } from '../../firmware-sim/board.ts';
import type { FenceTargetConfig, FencerConfig } from '../../src/fence/index.ts';
import { TokenMonotonicity } from '../../src/fence/index.ts';
import type { NodeId } from '../../src/types.ts';
import type { RuntimeFencingOptions } from '../runtime/leader-fencing.ts';

/** Hardware watchdog of every simulated board (ms): a Pi's bcm2835 can do 1–15 s; 3 s keeps the lease-only failover short. */
export const SIM_WATCHDOG_MS = 3000;

/**
 * Fencer timing in the simulator (src/fence/fencer.ts documents each): shorter than
 * the defaults for real boards so that a seed sees many fences, but in the same
 * proportions: random delay < priority delay < lease bound (≈ 3.2 s here).
 */
export const SIM_FENCER: Omit<FencerConfig, 'self' | 'targets'> = {
  opTimeoutMs: 1000,
  settleMs: 200,
  retries: 1,
  backoffMs: 200,
  backoffMaxMs: 1000,
  randomDelayMaxMs: 500,
  priorityDelayMs: 1000,
};
/** A fenced board stays off this long before its relay closes again (ms). */
export const SIM_POWER_ON_AFTER_MS = 3000;

/** Who can fence whom: controller → targets. */
export type FenceWiring = Map<NodeId, NodeId[]>;

/** The relay topology for `dataIds` (sorted): all-to-all up to 3 data boards, else a ring of both neighbours. */
export function fenceTopology(dataIds: readonly NodeId[]): FenceWiring {
  const ids = [...dataIds].sort((a, b) => a - b);
  const out: FenceWiring = new Map();
  for (const id of ids) out.set(id, []);
  if (ids.length < 2) return out;
  if (ids.length <= 3) {
    for (const a of ids) for (const b of ids) if (a !== b) out.get(a)!.push(b);
    return out;
  }
  ids.forEach((a, i) => {
    const next = ids[(i + 1) % ids.length]!;
    const prev = ids[(i - 1 + ids.length) % ids.length]!;
    out.get(a)!.push(...[...new Set([next, prev])].sort((x, y) => x - y));
  });
  return out;
}

/** Wires relays and power-sense inputs in the world (before it runs). */
export function wireFencing(world: World, dataIds: readonly NodeId[]): FenceWiring {
  const wiring = fenceTopology(dataIds);
  for (const [from, targets] of wiring) {
    for (const to of targets) {
      world.wireRelay(from, to);
      world.powerSense(from, to);
    }
  }
  return wiring;
}

/** The runtime's fencing options for one boot of one board. */
export function simFencing(hal: BoardHal, wiring: FenceWiring | null): RuntimeFencingOptions {
  const targets: FenceTargetConfig[] = (wiring?.get(hal.node) ?? []).map((t) => ({
    target: t,
    levels: [[{ kind: 'gpio-relay', relay: `relay:${t}`, sense: `sense:${t}` }]],
    action: 'reboot',
    powerOnAfterMs: SIM_POWER_ON_AFTER_MS,
  }));
  return {
    watchdog: hal.watchdog,
    relays: hal.relays,
    powerSense: hal.powerSense,
    ...(targets.length > 0 ? { fencer: { ...SIM_FENCER, targets } } : {}),
  };
}

export interface ActuatorCommand {
  node: NodeId;
  token: number;
  atUs: number;
  stale: boolean;
}

/** The simulated outside world: records every command and measures split brain. */
export class SimActuator {
  actuations = 0;
  stale = 0;
  dualUs = 0;
  /** Time without any active leader after there had been one (µs each; an open gap at the end is not counted). */
  readonly gapsUs: number[] = [];
  /** Last commands (for a violation report). */
  readonly recent: ActuatorCommand[] = [];
  readonly tokens = new TokenMonotonicity();
  /** Highest token any activation has been handed so far: the newest leadership epoch. */
  private newest = 0;
  private lastUs = 0;
  private activeNow = 0;
  private everActive = false;
  private gapFromUs: number | null = null;

  /** Fences that switched a board off (or found it off), and fences that failed (every cluster's `fenced` observer). */
  fences = 0;
  fencesFailed = 0;

  /** A fence run by some node finished. */
  fenceFinished(rec: { outcome: string }): void {
    if (rec.outcome === 'off' || rec.outcome === 'already-off') this.fences++;
    else if (rec.outcome === 'failed') this.fencesFailed++;
  }

  /** Any activation event (every cluster's `activation` observer): the token check of `activated` for active=true, else null. */
  activationEvent(node: NodeId, ev: { active: boolean; token: number }, nowUs: number): string | null {
    return ev.active ? this.activated(node, ev.token, nowUs) : null;
  }

  /** An activation (active=true) with its token: "fencing tokens only grow". Returns an error text or null. */
  activated(node: NodeId, token: number, nowUs: number): string | null {
    if (token > this.newest) this.newest = token;
    const ok = this.tokens.observe(token, `n${node} at ${(nowUs / 1000).toFixed(3)} ms`);
    return ok ? null : this.tokens.violations.at(-1)!;
  }

  /** After every step: accounts time with ≥ 2 active leaders, and failover gaps. */
  update(nowUs: number, active: number): void {
    if (this.activeNow >= 2) this.dualUs += nowUs - this.lastUs;
    this.lastUs = nowUs;
    this.activeNow = active;
    if (active > 0) {
      if (this.gapFromUs !== null) this.gapsUs.push(nowUs - this.gapFromUs);
      this.gapFromUs = null;
      this.everActive = true;
    } else if (this.everActive && this.gapFromUs === null) {
      this.gapFromUs = nowUs;
    }
  }

  /** One command from an active leader. */
  command(node: NodeId, token: number, nowUs: number): void {
    this.actuations++;
    const stale = token < this.newest;
    if (stale) this.stale++;
    this.recent.push({ node, token, atUs: nowUs, stale });
    if (this.recent.length > 20) this.recent.shift();
  }
}

/** Data boards that are off because of fencing: mains on, rail dead (a relay contact is open). */
export function fencedOff(world: World, dataIds: readonly NodeId[]): NodeId[] {
  return dataIds.filter((id) => {
    const b = world.board(id);
    return b.mainsOn && !b.railLive;
  });
}

/** How many of `boards` are off because of fencing, without building a list (checked after every step). */
export function countFencedOffBoards(boards: readonly Board[]): number {
  let n = 0;
  for (let i = 0; i < boards.length; i++) {
    const b = boards[i]!;
    if (b.mainsOn && !b.railLive) n++;
  }
  return n;
}

/** Percentile (nearest rank) of a list of numbers; -1 when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return -1;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
