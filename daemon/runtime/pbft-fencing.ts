/**
 * STONITH under engine pbft: the runtime side of src/pbft/actuation.ts (FenceTally, the
 * rule and why it holds). Kept out of the shared runtime file; engine-node.ts hosts it
 * with a few calls (heard, tick, a fence request executed, stopped).
 *
 *   1. Failure detector. PBFT has no leader heartbeats, but every replica sends every
 *      other a STATUS each `statusMs` (1 s), and every frame is tagged with its
 *      sender's own key (pbft-host.ts derivedFrameKeys): a frame that passed the wire's
 *      check is a liveness sign of its sender that another member cannot forge. A member
 *      not heard from for `suspectAfterMs` (default 4 × statusMs) is suspected.
 *   2. Votes. While the detector's view differs from what the executed sequence holds
 *      as this board's newest vote about X (FenceTally.votesNow), the board proposes —
 *      as its own origin, signed, through the normal PBFT path — `suspect X round`
 *      (the round as it executed it) or `clear X`. One request per target in flight;
 *      a lost or refused one is proposed again after it timed out.
 *   3. The tally is replicated state: the runtime applies every executed fence request
 *      to it (on every replica, with or without fencing configured) and it travels in
 *      the checkpoints (pbft-clients.ts encodePbftState), so a replica that caught up by
 *      state transfer reaches the same decisions.
 *   4. A decision at sequence s fences X on the board(s) whose `fencer` lists X, when
 *      they execute s — never earlier — through the shared FencingDriver (src/fence
 *      Fencer: levels, verify, "already off" is success, power-on after
 *      `powerOnAfterMs` for 'reboot'), with s as the fence's token (`term`). A decision
 *      replayed at boot (s at or below the executed index this process booted with)
 *      does not switch anything again. That index is stored without an fsync
 *      (pbft-host.ts), so a decision executed just before a crash may be carried out
 *      once more: "already off", or one more reboot of X. A board that was behind
 *      carries a decision out when it executes it, late.
 *   5. After a decision about X the detector holds X as heard for `holdAfterFenceMs`
 *      (default 30 s): a fenced board that reboots is not voted off again while it boots;
 *      if it stays silent past the hold it is suspected again (a relay that failed gets
 *      another try; "already off" is then success).
 *
 * What a liar can do here: vote as often as it likes (one vote: FenceTally counts its
 * newest), delay or reorder votes as primary (the newest-request rule), stay silent
 * (then the others may fence it: that is the point). What it cannot: vote in another
 * board's name (signed origin) or keep another board "heard" (per-sender frame keys).
 * A liar wired to a relay can of course switch it whenever it likes: wiring a relay to
 * a board trusts that board with it (docs/fencing.md).
 */
import { FenceTally, type FenceDecision, type FenceRequest } from '../../src/pbft/actuation.ts';
import type { FenceRecord } from '../../src/fence/index.ts';
import { CborWriter, readCbor } from '../../src/kv/cbor.ts';
import type { Index, NodeId } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Clock, PowerSense, Relay } from '../../hal/interfaces.ts';
import type { FencerConfig } from '../../src/fence/index.ts';
import { FencingDriver, fenceSucceeded } from './fencing-driver.ts';
import type { Logger } from './logger.ts';

/** First element of a fence request in the PBFT log: outside the KV op codes and PBFT_CLIENT_OP (200). */
export const PBFT_FENCE_OP = 220;

/** The operation bytes of a fence request: CBOR [220, 0, target, round] (suspect) or [220, 1, target, 0] (clear). */
export function encodeFenceOp(r: FenceRequest): Uint8Array {
  return new CborWriter(16).array(4).uint(PBFT_FENCE_OP).uint(r.kind === 'suspect' ? 0 : 1).uint(r.target).uint(r.kind === 'suspect' ? r.round : 0).finish();
}

/** Whether log bytes are a fence request (cheap: the first three bytes; 0x84 = array of 4, 0x18 0xdc = uint 220). */
export function isFenceOp(data: Uint8Array): boolean {
  return data.length >= 6 && data[0] === 0x84 && data[1] === 0x18 && data[2] === PBFT_FENCE_OP;
}

/** Decodes a fence request; a string names what is wrong. Never throws. */
export function decodeFenceOp(data: Uint8Array): FenceRequest | string {
  if (data.length > 32) return `fence request: ${data.length} bytes, at most 32 expected`;
  const r = readCbor(data);
  if (!r.ok) return `fence request: not valid CBOR: ${r.error}`;
  const a = r.value;
  if (!Array.isArray(a) || a.length !== 4 || a[0] !== PBFT_FENCE_OP) return 'fence request: expected [220, kind, target, round]';
  const [, kind, target, round] = a;
  if (typeof target !== 'number' || !Number.isInteger(target) || target < 1 || target > 254) return `fence request: target must be a node id 1..254, got ${String(target)}`;
  if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 0) return `fence request: round must be an integer ≥ 0, got ${String(round)}`;
  if (kind === 0) return { kind: 'suspect', target, round };
  if (kind === 1) return { kind: 'clear', target };
  return `fence request: kind must be 0 (suspect) or 1 (clear), got ${String(kind)}`;
}

/** The `fencing` options of a pbft node (the same devices as the other engines'; no lease, no watchdog). */
export interface PbftFencingOptions {
  relays?: Relay[];
  powerSense?: PowerSense[];
  /** Fence targets and timing (src/fence/fencer.ts). Omitted or no targets: this board votes but drives no relay. */
  fencer?: Omit<FencerConfig, 'self'>;
  /** A member not heard from this long is suspected (ms). Default 4 × the engine's statusMs. */
  suspectAfterMs?: number;
  /** After a fence decision about X, X counts as heard for this long (ms). Default 30000. */
  holdAfterFenceMs?: number;
  /**
   * Testing only (`quorumd sim --faults byzantine`): this board lies about its failure
   * detector and votes to fence every other member in every round, whether it hears
   * them or not.
   */
  lieSuspectAll?: boolean;
  /** Testing only: a planted bug in the tally (src/pbft/actuation.ts FenceTallyOptions.planted), to show the simulator's checks catch it. */
  plantedTally?: 'one-vote' | 'stale-votes';
}

export interface PbftFencingHost {
  id: NodeId;
  members: readonly NodeId[];
  clock: Clock;
  log: Logger;
  rng: Rng;
  tickMs: number;
  statusMs: number;
  running(): boolean;
  stopped(): boolean;
  /** The replicated tally as this replica executed it so far. */
  tally(): FenceTally;
  /** Proposes `data` as this node's request; `done` once its outcome is known (any). Returns its request number, or undefined when refused now. */
  propose(data: Uint8Array, done: () => void): number | undefined;
  /** The executed index this process booted with: decisions at or below it are replays. */
  bootExecuted: Index;
  crash(where: string, e: unknown): void;
  /** Observers (the simulator's checks). */
  voted?(reqNo: number, req: FenceRequest, detectorSuspects: boolean): void;
  decided?(d: FenceDecision): void;
  fenced?(rec: FenceRecord): void;
}

export class PbftFencing {
  private readonly driver: FencingDriver | undefined;
  private readonly targets: Set<NodeId>;
  /** Monotonic ms each member was last heard (or held as heard after a fence decision). */
  private readonly heardAt = new Map<NodeId, number>();
  /** Targets with a request of ours in flight. */
  private readonly inFlight = new Set<NodeId>();
  readonly suspectAfterMs: number;
  readonly holdAfterFenceMs: number;
  private readonly lie: boolean;
  /** Fences this board started on decisions (for status), newest last, bounded. */
  readonly started: Array<{ target: NodeId; index: Index; by: NodeId[] }> = [];

  constructor(private readonly h: PbftFencingHost, o: PbftFencingOptions) {
    if (o === null || typeof o !== 'object') throw new TypeError('EngineRuntime: fencing must be an object (PbftFencingOptions)');
    const ms = (v: unknown, name: string, dflt: number): number => {
      if (v === undefined) return dflt;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`EngineRuntime: fencing.${name} must be a positive number of ms, got ${String(v)}`);
      return v;
    };
    this.suspectAfterMs = ms(o.suspectAfterMs, 'suspectAfterMs', 4 * h.statusMs);
    this.holdAfterFenceMs = ms(o.holdAfterFenceMs, 'holdAfterFenceMs', 30_000);
    this.lie = o.lieSuspectAll === true;
    const targets = o.fencer?.targets ?? [];
    if (!Array.isArray(targets)) throw new TypeError('EngineRuntime: fencing.fencer.targets must be an array');
    this.targets = new Set(targets.map((t) => t.target));
    if (this.targets.has(h.id)) throw new RangeError(`EngineRuntime: fencing.fencer lists this node (${h.id}) as its own target`);
    const now = h.clock.monotonicMs();
    for (const m of h.members) if (m !== h.id) this.heardAt.set(m, now);
    if (targets.length > 0) {
      this.driver = new FencingDriver({
        who: 'EngineRuntime',
        id: h.id,
        devices: o,
        rng: h.rng,
        clock: h.clock,
        log: h.log,
        running: () => h.running(),
        stopped: () => h.stopped(),
        resultFed: (t) => this.driver?.step(t),
        wake: () => this.driver?.step(h.clock.monotonicMs()),
        record: (r) => this.recordChanged(r),
        pollMs: h.tickMs,
        fatal: (where, e) => h.crash(where, e),
      });
    }
  }

  /** An authenticated frame from `from` arrived. */
  heard(from: NodeId, now: number): void {
    const t = this.heardAt.get(from);
    if (t !== undefined && t < now) this.heardAt.set(from, now);
  }

  /** Whether this board's detector suspects `target` now. */
  suspects(target: NodeId, now: number): boolean {
    const t = this.heardAt.get(target);
    return t !== undefined && now - t > this.suspectAfterMs;
  }

  /** Monotonic ms of the last tick (NaN before the first). */
  private lastTick = NaN;

  /** Every tick: compare the detector with the executed votes; propose where they differ. */
  tick(now: number): void {
    // Silence is counted in this process's own running time: after a stall of this
    // process (SIGSTOP, a GC pause, a starved core: its tick came late) the others'
    // frames are still unread in the socket, so the stall counts for nobody.
    const gap = now - this.lastTick - this.h.tickMs;
    if (gap > this.h.tickMs) for (const [x, t] of this.heardAt) this.heardAt.set(x, t + gap);
    this.lastTick = now;
    this.driver?.step(now);
    const tally = this.h.tally();
    for (const x of this.heardAt.keys()) {
      if (this.inFlight.has(x)) continue;
      const detector = this.suspects(x, now);
      const want = detector || this.lie;
      const have = tally.votesNow(this.h.id, x);
      if (want === have) continue;
      const req: FenceRequest = want ? { kind: 'suspect', target: x, round: tally.round(x) } : { kind: 'clear', target: x };
      this.inFlight.add(x);
      const reqNo = this.h.propose(encodeFenceOp(req), () => this.inFlight.delete(x));
      if (reqNo === undefined) {
        this.inFlight.delete(x);
        return; // refused (busy, stopped): the next tick tries again
      }
      if (req.kind === 'suspect' && !detector) this.h.log('error', `TESTING ONLY: lying vote to fence n${x} (round ${req.round}), heard ${Math.round(now - this.heardAt.get(x)!)} ms ago`, { node: this.h.id, target: x, reqNo });
      else if (req.kind === 'suspect') this.h.log('warn', `pbft fencing: n${x} not heard for ${Math.round(now - this.heardAt.get(x)!)} ms: voting to fence it (round ${req.round})`, { node: this.h.id, target: x, reqNo });
      else this.h.log('info', `pbft fencing: n${x} heard again: withdrawing the vote to fence it`, { node: this.h.id, target: x, reqNo });
      this.h.voted?.(reqNo, req, detector);
    }
  }

  /** A fence decision executed at `d.index` (on every replica, in order). */
  decided(d: FenceDecision, now: number): void {
    this.h.decided?.(d);
    // Hold the target as heard: it is about to be switched off and, for 'reboot', back on.
    const t = this.heardAt.get(d.target);
    if (t !== undefined) this.heardAt.set(d.target, Math.max(t, now + this.holdAfterFenceMs));
    if (!this.driver || !this.targets.has(d.target)) return;
    if (d.index <= this.h.bootExecuted) {
      this.h.log('info', `pbft fencing: decision to fence n${d.target} at ${d.index} replayed at boot: not switching again`, { node: this.h.id, target: d.target, index: d.index });
      return;
    }
    this.h.log('warn', `pbft fencing: fencing n${d.target}: committed decision at ${d.index} by ${d.by.map((b) => `n${b}`).join(', ')}`, { node: this.h.id, target: d.target, index: d.index });
    this.started.push({ target: d.target, index: d.index, by: d.by });
    if (this.started.length > 64) this.started.shift();
    this.driver.fence(d.target, now, { reason: `pbft decision at ${d.index} by ${d.by.map((b) => `n${b}`).join(',')}`, term: d.index, targetRunsWorkload: false });
    this.driver.step(now);
  }

  /** Local fence records (status). */
  fences(): FenceRecord[] {
    return this.driver ? [...this.driver.fencer.history()] : [];
  }

  stopped(): void {
    this.driver?.stop();
  }

  private recordChanged(r: FenceRecord): void {
    if (r.outcome === 'pending') return;
    if (r.poweredOnAtMs === null && r.powerOnError === null) {
      // The fence itself finished (a later record of the same fence reports the power-on).
      this.driver!.logFinished(r, fenceSucceeded(r));
      this.h.fenced?.(r);
    } else this.driver!.logPowerOn(r);
  }
}
