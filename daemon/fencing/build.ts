/**
 * Turns the `fencing:` config section (daemon/config/fencing.ts) into the HAL objects
 * and the `RuntimeFencingOptions` that `startNode` hands to the node runtime:
 *
 *   gpio-relay   → LedRelay | SysfsRelay | GpiosetRelay (hal/gpio)
 *   serial-relay → one RelayBoardClient per board path (hal/relay-board), opened on
 *                  first use and again after a failure, so that an unplugged board is a
 *                  failed fence level (the next level runs), not a failed start
 *   watchdog-wait→ a pure wait (src/fence/fencer.ts)
 *   dev-relay    → DevRelay (daemon/fencing/dev-relay.ts; `quorumd dev` only)
 *   sense        → SysfsPowerSense | GpiogetPowerSense
 *   watchdog     → DevWatchdog (opened, so armed, here)
 *
 * Device names (logs, /v1/status `relays`): `relay:<target>:<level>.<n>` and
 * `sense:<target>:<level>.<n>`, levels and devices counted from 1.
 * The result is validated once more with `checkFencerConfig` (src/fence).
 */
import type { PbftFencingOptions } from '../runtime/pbft-fencing.ts';
import type { Done, DoneWith, PowerSense, Relay, Watchdog } from '../../hal/interfaces.ts';
import { GpiogetPowerSense, GpiosetRelay, LedRelay, SysfsPowerSense, SysfsRelay } from '../../hal/gpio/index.ts';
import { openSerialRelayBoard, type SerialRelayBoard } from '../../hal/relay-board/index.ts';
import { DevWatchdog } from '../../hal/watchdog.ts';
import { checkFencerConfig, type FenceDevice, type FenceTargetConfig } from '../../src/fence/index.ts';
import type { RuntimeFencingOptions } from '../runtime/leader-fencing.ts';
import type { BullyFencingOptions } from '../runtime/bully-fencing.ts';
import type { FenceDeviceConfig, FencingConfig, SenseConfig } from '../config/fencing.ts';
import { DevRelay } from './dev-relay.ts';
import { readSecretFile } from '../config/secrets.ts';

/** One configured device, as /v1/status lists it under `relays`. */

/**
 * The leader's own lease on a real board, ms, unless `fencing.activation.leaseMs`
 * says otherwise. The runtime's default (the election timeout minimum, 150 ms in the
 * engine, three heartbeat rounds) suits the simulator; through a broker on a busy board
 * it makes a leader's activity flap — hooks stopped and started, locks refused —
 * whenever a few rounds come back late. 900 ms rides out such hiccups and stays below
 * the board's default election timeout minus the drift bound: a follower that
 * acknowledged a round at real time ≥ S waits raft.electionTimeoutMinMs (1000) on its
 * own clock before it may elect anyone, i.e. ≥ 1000/(1+ρ) = 952 ms of real time with
 * ρ = 5 %, while the leader stops at most 900/(1−ρ) = 947 ms after S. So with the
 * default timings the old leader's lease has ended before a new leader can exist, and
 * the new leader's wait (activation.ts safeAt) is a second guard, not the only one.
 * Its cost: a new leader that cannot fence waits this much longer (on top of the
 * watchdog timeout, 15 s by default); with STONITH the fence decides and the lease
 * length does not matter.
 */
export const DEFAULT_BOARD_LEASE_MS = 900;

/** Without a `watchdog` device, the watchdog timeout the lease bound assumes: 15000 ms, bcm2835's maximum. */
export const DEFAULT_WATCHDOG_TIMEOUT_MS = 15_000;

export interface FenceDeviceInfo {
  name: string;
  type: FenceDeviceConfig['type'];
  /** Target member name. */
  target: string;
  level: number;
  /** Where it is: backend and line, board path and channel, URL... */
  detail: string;
  sense?: string;
}

export interface BuiltFencing {
  options: RuntimeFencingOptions;
  devices: FenceDeviceInfo[];
  /** The watchdog opened (and armed) here, if configured. */
  watchdog: Watchdog | undefined;
  /** Closes serial relay boards and gpioset children (not the watchdog: the runtime disarms it on stop). */
  close(): void;
}

export interface BuildDeps {
  members: Array<{ id: number; name: string }>;
  selfId: number;
  log: { warn(fields: Record<string, unknown>, msg: string): void; error(fields: Record<string, unknown>, msg: string): void };
}

/** A relay board opened lazily: each operation first (re)opens the port if needed. */
class LazyBoard {
  private board: SerialRelayBoard | undefined;
  private opening: Array<(err: Error | null, b?: SerialRelayBoard) => void> | undefined;
  private closed = false;

  constructor(private readonly o: { path: string; channels: number; timeoutMs: number; statusFormat: 'ascii' | 'binary' }) {}

  private withBoard(fn: (err: Error | null, b?: SerialRelayBoard) => void): void {
    if (this.closed) return fn(new Error(`relay board ${this.o.path}: closed`));
    if (this.board) return fn(null, this.board);
    if (this.opening) return void this.opening.push(fn);
    this.opening = [fn];
    openSerialRelayBoard({ path: this.o.path, channels: this.o.channels, timeoutMs: this.o.timeoutMs, statusFormat: this.o.statusFormat }).then(
      (b) => {
        const w = this.opening ?? [];
        this.opening = undefined;
        if (this.closed) {
          b.close();
          for (const f of w) f(new Error(`relay board ${this.o.path}: closed`));
          return;
        }
        this.board = b;
        for (const f of w) f(null, b);
      },
      (err: Error) => {
        const w = this.opening ?? [];
        this.opening = undefined;
        for (const f of w) f(err);
      },
    );
  }

  relay(channel: number, wiring: 'nc' | 'no', name: string): Relay {
    const fail = (done: (e: Error) => void, e: unknown) => {
      // A failed operation may mean the USB board went away: reopen next time.
      const b = this.board;
      this.board = undefined;
      b?.close();
      done(e instanceof Error ? e : new Error(String(e)));
    };
    return {
      name,
      set: (on: boolean, done: Done) =>
        this.withBoard((err, b) => {
          if (err) return done(err);
          try {
            b!.client.relay(channel, { wiring, name }).set(on, (e) => (e ? fail(done, e) : done(null)));
          } catch (e) {
            fail(done, e);
          }
        }),
      read: (done: DoneWith<boolean>) =>
        this.withBoard((err, b) => {
          if (err) return done(err);
          try {
            b!.client.relay(channel, { wiring, name }).read((e, v) => (e ? fail(done, e) : done(null, v)));
          } catch (e) {
            fail(done, e);
          }
        }),
    };
  }

  close(): void {
    this.closed = true;
    this.board?.close();
    this.board = undefined;
  }
}

function buildSense(s: SenseConfig, name: string): PowerSense {
  if (s.backend === 'sysfs') return new SysfsPowerSense({ name, chipLabel: s.chipLabel!, line: s.line, liveLevel: s.liveLevel, ...(s.root ? { root: s.root } : {}) });
  return new GpiogetPowerSense({ name, chip: s.chip!, line: s.line, liveLevel: s.liveLevel });
}

/**
 * Builds everything; throws an Error naming the config key for anything that cannot
 * be built (a watchdog device that does not open, a bad line...).
 */
export function buildFencing(f: FencingConfig, deps: BuildDeps): BuiltFencing {
  const idOf = new Map(deps.members.map((m) => [m.name, m.id]));
  const relays: Relay[] = [];
  const senses: PowerSense[] = [];
  const devices: FenceDeviceInfo[] = [];
  const boards = new Map<string, LazyBoard>();
  const gpiosets: GpiosetRelay[] = [];
  const targets: FenceTargetConfig[] = [];
  const key = (i: number, j: number, k: number) => `fencing.targets.${i}.levels.${j}.${k}`;

  const closeAll = () => {
    for (const b of boards.values()) b.close();
    for (const g of gpiosets) g.close();
  };

  try {
    f.targets.forEach((t, i) => {
      const levels: FenceDevice[][] = t.levels.map((lv, j) =>
        lv.map((d, k): FenceDevice => {
          const tag = `${t.node}:${j + 1}.${k + 1}`;
          const sname = `sense:${tag}`;
          let senseName: string | undefined;
          if (d.type !== 'dev-relay' && d.sense) {
            try {
              senses.push(buildSense(d.sense, sname));
            } catch (e) {
              throw new Error(`${key(i, j, k)}.sense: ${(e as Error).message}`);
            }
            senseName = sname;
          }
          if (d.type === 'watchdog-wait') {
            devices.push({ name: `wait:${tag}`, type: d.type, target: t.node, level: j + 1, detail: `wait ${d.waitMs} ms for its watchdog`, ...(senseName ? { sense: senseName } : {}) });
            return { kind: 'watchdog-wait', waitMs: d.waitMs, ...(senseName ? { sense: senseName } : {}) };
          }
          const rname = `relay:${tag}`;
          let relay: Relay;
          let detail: string;
          try {
            if (d.type === 'gpio-relay') {
              const pol = { activeLow: d.activeLow, cutWhenActive: d.cutWhenActive };
              if (d.backend === 'led') {
                relay = new LedRelay({ name: rname, led: d.led!, ...pol, ...(d.root ? { root: d.root } : {}) });
                detail = `led ${d.led}`;
              } else if (d.backend === 'sysfs') {
                relay = new SysfsRelay({ name: rname, chipLabel: d.chipLabel!, line: d.line!, ...pol, ...(d.root ? { root: d.root } : {}) });
                detail = `sysfs ${d.chipLabel} line ${d.line}`;
              } else {
                const g = new GpiosetRelay({ name: rname, chip: d.chip!, line: d.line!, ...pol, onFault: (err) => deps.log.error({ relay: rname, error: err.message }, 'gpioset relay fault') });
                gpiosets.push(g);
                relay = g;
                detail = `gpioset ${d.chip} line ${d.line}`;
              }
            } else if (d.type === 'serial-relay') {
              let b = boards.get(d.path);
              if (!b) boards.set(d.path, (b = new LazyBoard({ path: d.path, channels: d.channels, timeoutMs: d.timeoutMs, statusFormat: d.statusFormat })));
              relay = b.relay(d.channel, d.wiring, rname);
              detail = `relay board ${d.path} channel ${d.channel} (${d.wiring})`;
            } else {
              relay = new DevRelay({ url: d.url, node: t.node, name: rname, ...(d.tokenFile !== undefined ? { token: readSecretFile(d.tokenFile, `fencing dev-relay tokenFile`) } : {}) });
              detail = `dev rail ${d.url} (quorumd dev only)`;
            }
          } catch (e) {
            throw new Error(`${key(i, j, k)}: ${(e as Error).message}`);
          }
          relays.push(relay);
          devices.push({ name: rname, type: d.type, target: t.node, level: j + 1, detail, ...(senseName ? { sense: senseName } : {}) });
          return { kind: d.type === 'serial-relay' ? 'serial-relay' : 'gpio-relay', relay: rname, ...(senseName ? { sense: senseName } : {}) };
        }),
      );
      targets.push({ target: idOf.get(t.node)!, levels, action: t.action, powerOnAfterMs: t.powerOnAfterMs, delayMs: t.delayMs });
    });

    const timing = {
      ...(f.opTimeoutMs !== undefined ? { opTimeoutMs: f.opTimeoutMs } : {}),
      ...(f.settleMs !== undefined ? { settleMs: f.settleMs } : {}),
      ...(f.retries !== undefined ? { retries: f.retries } : {}),
      ...(f.backoffMs !== undefined ? { backoffMs: f.backoffMs } : {}),
      ...(f.backoffMaxMs !== undefined ? { backoffMaxMs: f.backoffMaxMs } : {}),
      ...(f.randomDelayMaxMs !== undefined ? { randomDelayMaxMs: f.randomDelayMaxMs } : {}),
      ...(f.priorityDelayMs !== undefined ? { priorityDelayMs: f.priorityDelayMs } : {}),
      ...(f.historyLimit !== undefined ? { historyLimit: f.historyLimit } : {}),
    };
    // STONITH off: keep the devices listed (status shows them) but give the runtime no targets.
    const fencer = { ...timing, targets: f.stonith ? targets : [] };
    try {
      checkFencerConfig({ ...fencer, self: deps.selfId });
    } catch (e) {
      throw new Error(`fencing: ${(e as Error).message}`);
    }

    let watchdog: Watchdog | undefined;
    if (f.watchdog) {
      try {
        watchdog = new DevWatchdog({ path: f.watchdog.path, timeoutMs: f.watchdog.timeoutMs, onError: (err) => deps.log.error({ error: err.message }, 'watchdog') });
      } catch (e) {
        throw new Error(`fencing.watchdog: ${(e as Error).message}`);
      }
    }

    const options: RuntimeFencingOptions = {
      activation: {
        leaseMs: DEFAULT_BOARD_LEASE_MS,
        ...Object.fromEntries(Object.entries(f.activation ?? {}).filter(([, v]) => v !== undefined)),
        ...(f.waitForAll.length > 0 ? { waitForAll: f.waitForAll.map((n) => idOf.get(n)!) } : {}),
      },
      ...(watchdog ? { watchdog } : { watchdogTimeoutMs: f.watchdogTimeoutMs ?? DEFAULT_WATCHDOG_TIMEOUT_MS }),
      relays,
      powerSense: senses,
      fencer,
    };
    return { options, devices, watchdog, close: closeAll };
  } catch (e) {
    closeAll();
    throw e;
  }
}

/**
 * Engine pbft's fencing options from a build (daemon/runtime/pbft-fencing.ts): relays,
 * power-sense inputs and the fencer; no lease or watchdog (checkPbftFencing rejected
 * those keys). `stonith: false` or no targets: this board votes but switches nothing.
 */
export function pbftFencingOptions(b: BuiltFencing): PbftFencingOptions {
  if (b.watchdog) throw new Error('fencing.watchdog: not used by engine pbft (checkPbftFencing rejects it)');
  return { relays: b.options.relays ?? [], powerSense: b.options.powerSense ?? [], ...(b.options.fencer ? { fencer: b.options.fencer } : {}) };
}

/**
 * The bully runtime's fencing options from a build: relays, power-sense inputs and the
 * fencer (no lease, no watchdog: checkBullyFencing rejected those keys). `stonith: false`
 * or no targets gives a fencer without targets: tokens only.
 */
export function bullyFencingOptions(b: BuiltFencing): BullyFencingOptions {
  if (b.watchdog) throw new Error('fencing.watchdog: not used by engine bully (checkBullyFencing rejects it)');
  return { relays: b.options.relays ?? [], powerSense: b.options.powerSense ?? [], fencer: b.options.fencer };
}
