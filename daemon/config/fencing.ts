/**
 * The `fencing:` section of a node's config (issue 6; docs/fencing.md has the
 * operator's view, docs/config.md the table). Every key is documented here with
 * its default and why. The pure sequencing behind it is src/fence/fencer.ts
 * (`FencerConfig`, validated again with `checkFencerConfig` when the devices are built
 * in daemon/fencing/build.ts) and the activation rules daemon/runtime/activation.ts.
 *
 * Without a `fencing:` section a node runs as before fencing existed: a leader is
 * active as soon as its first entry of the term commits, no lease gate, no STONITH,
 * no watchdog. With it (even `fencing: {}`), the activation gate, the leader lease and
 * the watchdog rules are on; STONITH is on when `targets` lists fence devices and
 * `stonith` is not false.
 *
 *   fencing:
 *     watchdog: { path: /dev/watchdog, timeoutMs: 15000 }
 *     targets:
 *       - node: pi-right
 *         levels:
 *           - - { type: gpio-relay, backend: gpioset, chip: gpiochip0, line: 17,
 *                 sense: { backend: gpioget, chip: gpiochip0, line: 27 } }
 *           - - { type: serial-relay, path: /dev/ttyUSB0, channel: 1, channels: 4 }
 *           - - { type: watchdog-wait, waitMs: 20000 }
 */
import { int } from './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';

const bool = (what: string) => z.boolean({ error: `expected ${what}: true or false` });
const str = (what: string) => z.string({ error: `expected ${what} (string)` }).min(1, { error: `expected ${what} (a non-empty string)` }).max(200, { error: `expected ${what} of at most 200 characters` });
const MEMBER_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const memberName = () => z.string({ error: 'expected a member name (string)' }).regex(MEMBER_NAME, { error: 'expected a member name (1-32 characters a-z, 0-9, -)' });
const DAY = 86_400_000;

/**
 * A power-sense input that reads the target's rail (strongly recommended: it is what
 * catches a relay wired to the wrong board). `backend`:
 *   - `sysfs`: legacy /sys/class/gpio line `line` on the chip labelled `chipLabel`;
 *   - `gpioget`: libgpiod's `gpioget` on `chip` / `line` (one short child per read).
 */
const sense = () => z.strictObject({
  backend: z.enum(['sysfs', 'gpioget'], { error: 'expected "sysfs" or "gpioget"' }),
  /** gpioget: chip name, number or label (e.g. gpiochip0, pinctrl-rp1). Required for gpioget. */
  chip: str('a chip').optional(),
  /** sysfs: the chip's label as in /sys/class/gpio/gpiochipN/label (e.g. pinctrl-bcm2711). Required for sysfs. */
  chipLabel: str('a chip label').optional(),
  /** Line offset on the chip (BCM GPIO number on a Pi). Required. */
  line: int('a line offset', 0, 1023),
  /** Level at which the target's rail is live. Default 1 (an opto-coupler pulling high). */
  liveLevel: z.union([z.literal(0), z.literal(1)], { error: 'expected 0 or 1' }).default(1),
  /** sysfs mount point. Default /sys (tests point it at a temporary tree). */
  root: str('a directory').optional(),
});

/**
 * A relay on a GPIO line. `backend`:
 *   - `led`: the kernel LED class (`gpio-led` overlay; `led` = its label). Survives a
 *     daemon crash and needs no tool. Recommended on a Pi (docs/wiring.md);
 *   - `sysfs`: legacy /sys/class/gpio (`chipLabel` + `line`);
 *   - `gpioset`: a long-lived libgpiod `gpioset` child (`chip` + `line`).
 */
const gpioRelay = () => z.strictObject({
  type: z.literal('gpio-relay'),
  backend: z.enum(['led', 'sysfs', 'gpioset'], { error: 'expected "led", "sysfs" or "gpioset"' }),
  /** led: the LED class device name (the overlay's label), e.g. fence-pi-right. */
  led: str('an LED name').optional(),
  chip: str('a chip').optional(),
  chipLabel: str('a chip label').optional(),
  line: int('a line offset', 0, 1023).optional(),
  /** The relay input is active at 0 V (many opto-isolated boards). Default false. */
  activeLow: bool('activeLow').default(false),
  /**
   * The relay cuts the target's power while its input is active (the target's supply
   * goes through the NC contact). Default true: a released line — daemon dead, board
   * rebooting — leaves the target powered; only a deliberate drive fences it.
   */
  cutWhenActive: bool('cutWhenActive').default(true),
  root: str('a directory').optional(),
  sense: sense().optional(),
});

/** One channel of a serial/USB relay board (hal/relay-board/, LCUS-type, 9600 8N1). */
const serialRelay = () => z.strictObject({
  type: z.literal('serial-relay'),
  /** Device; prefer the stable /dev/serial/by-id/... link. Required. Several devices may share a board. */
  path: str('a device path'),
  /** Channel on the board, 1-based. Required. */
  channel: int('a channel', 1, 8),
  /** Channels the board has (1..8); the same for every device on one board. Default 4 (LCUS-4). */
  channels: int('a channel count', 1, 8).default(4),
  /** `nc` (default): the target is fed through the normally-closed contact, so a fencer that loses power leaves it on. */
  wiring: z.enum(['nc', 'no'], { error: 'expected "nc" or "no"' }).default('nc'),
  /** Status reply format: `ascii` (default, LCUS-2/4/8) or `binary`. */
  statusFormat: z.enum(['ascii', 'binary'], { error: 'expected "ascii" or "binary"' }).default('ascii'),
  /** Answer deadline per board operation, ms. Default 1000 (hal/relay-board/client.ts explains). */
  timeoutMs: int('milliseconds', 50, 60_000).default(1000),
  sense: sense().optional(),
});

/**
 * Waiting for the target's own watchdog to reset it (it self-fences once it lost
 * quorum, like diskless SBD). `waitMs` must cover the target's selfFenceAfterMs +
 * watchdog timeout + a margin.
 */
const watchdogWait = () => z.strictObject({
  type: z.literal('watchdog-wait'),
  waitMs: int('milliseconds', 0, DAY),
  sense: sense().optional(),
});

/**
 * DEVELOPMENT ONLY (`quorumd dev` writes it): the target's "power rail" is held by the
 * dev supervisor, reached over HTTP on loopback. Off = the supervisor SIGKILLs the
 * target's process and keeps it down; on = it starts it again. Not for boards.
 */
const devRelay = () => z.strictObject({
  type: z.literal('dev-relay'),
  /** The supervisor's rail server, http://127.0.0.1:<port> (loopback only). */
  url: z.string({ error: 'expected a URL http://127.0.0.1:<port>' }).regex(/^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d{1,5}\/?$/, { error: 'expected a loopback URL http://127.0.0.1:<port> (dev relays exist only for `quorumd dev`)' }),
  /** The dev cluster's token file (mode 0600): the rail server refuses requests without it. */
  tokenFile: z.string({ error: 'expected a file path' }).optional(),
});

const device = () => z.discriminatedUnion('type', [gpioRelay(), serialRelay(), watchdogWait(), devRelay()], {
  error: 'expected a fence device with type gpio-relay, serial-relay, watchdog-wait or dev-relay',
});

const target = () => z.strictObject({
  /** The member this entry fences (its name). Required; not this node. */
  node: memberName(),
  /**
   * Fence levels, tried in order; a level is a list of devices that must all succeed
   * (a board with two supplies needs both relays). Required, 1..4 levels of 1..4 devices.
   */
  levels: z
    .array(z.array(device(), { error: 'expected a list of fence devices' }).min(1, { error: 'expected at least one device in a level' }).max(4, { error: 'expected at most 4 devices in a level' }), { error: 'expected a list of levels (each a list of devices)' })
    .min(1, { error: 'expected at least one fence level' })
    .max(4, { error: 'expected at most 4 fence levels' }),
  /** `reboot` (default): power the target back on after powerOnAfterMs, it rejoins as a follower. `off`: leave it off until an operator acts. */
  action: z.enum(['reboot', 'off'], { error: 'expected "reboot" or "off"' }).default('reboot'),
  /** How long the target stays off before power-on, ms. Default 10000: the 5 V rail drains and the new leader settles first. */
  powerOnAfterMs: int('milliseconds', 0, DAY).default(10_000),
  /** Fixed delay before fencing this target, ms. Default 0. Give one board of a pair a delay and it wins a fence race (Pacemaker pcmk_delay_base). */
  delayMs: int('milliseconds', 0, DAY).default(0),
});

export const fencingSchema = () => z.strictObject({
  /**
   * STONITH on/off. Default true: the listed targets are fenced when needed. false
   * keeps the gate, the leases and the watchdog but never switches a relay (failover
   * then waits for the lease bound, an acknowledgement or `quorumd fence confirm`).
   */
  stonith: bool('stonith').default(true),
  /**
   * Two-node mode, first start: members that must all have been seen once before this
   * node becomes active or fences anyone (corosync's wait_for_all). Default []: no
   * waiting. The node persists that the cluster formed and does not wait again after a
   * restart. With Raft a fresh cluster has no committed leadership claim, so its first
   * leader has nobody to fence anyway; the list makes "both boards were up once" an
   * explicit precondition of acting (daemon/runtime/activation.ts). Raft only.
   */
  waitForAll: z.array(memberName(), { error: 'expected a list of member names' }).max(7, { error: 'expected at most 7 names' }).default([]),
  /** This board's hardware watchdog (hal/watchdog.ts). Default: none (the lease bound then assumes watchdogTimeoutMs). */
  watchdog: z
    .strictObject({
      /** Default /dev/watchdog. Only one process may hold it (disable systemd's RuntimeWatchdogSec, docs/wiring.md). */
      path: str('a device path').default('/dev/watchdog'),
      /** The driver's timeout, ms; must match it (`wdctl` shows it). Default 15000 (bcm2835 maximum). */
      timeoutMs: int('milliseconds', 1000, 600_000).default(15_000),
    })
    .optional(),
  /**
   * Without a `watchdog` device: the watchdog timeout the lease bound assumes for
   * every board, ms. Default 15000 (bcm2835's). A new leader without STONITH waits about
   * this long after a crash of the old one.
   */
  watchdogTimeoutMs: int('milliseconds', 1, 600_000).optional(),
  /** Lease and self-fence timing (daemon/runtime/activation.ts documents each; defaults there). */
  activation: z
    .strictObject({
      /** Own lease from a quorum-acknowledged heartbeat round, ms. Default 900, below the default election timeout minus the drift bound (daemon/fencing/build.ts DEFAULT_BOARD_LEASE_MS says why). */
      leaseMs: int('milliseconds', 1, 3_600_000).optional(),
      /** Clock drift bound, ppm. Default 50000. */
      maxDriftPpm: int('ppm', 0, 100_000).optional(),
      /** Scheduling margin, ms. Default 50. */
      marginMs: int('milliseconds', 0, 3_600_000).optional(),
      /** A node that was active and lost its lease stops feeding the watchdog after this, ms. Default 1000. */
      selfFenceAfterMs: int('milliseconds', 0, 3_600_000).optional(),
    })
    .optional(),
  /** A relay or sense command without an answer after this long fails the level, ms. Default 5000. */
  opTimeoutMs: int('milliseconds', 1, 600_000).optional(),
  /** Wait between switching off and verifying, ms. Default 500 (a Pi's 5 V rail draining). */
  settleMs: int('milliseconds', 0, 600_000).optional(),
  /** Retries of a failed level before the next, with exponential backoff. Default 2. */
  retries: int('a count', 0, 20).optional(),
  /** First backoff, ms (doubled per retry). Default 500. */
  backoffMs: int('milliseconds', 0, 600_000).optional(),
  /** Backoff cap, ms. Default 8000. */
  backoffMaxMs: int('milliseconds', 0, 3_600_000).optional(),
  /** Random delay 0..max before a fence, ms (Pacemaker pcmk_delay_max). Default 2000. */
  randomDelayMaxMs: int('milliseconds', 0, 600_000).optional(),
  /** Extra delay when the target runs the workload, ms (priority-fencing-delay). Default 5000: the active board wins a race. */
  priorityDelayMs: int('milliseconds', 0, 600_000).optional(),
  /** Fence records kept in memory. Default 100. */
  historyLimit: int('a count', 1, 10_000).optional(),
  /** Fence devices per target member. Default []: no STONITH (leases and operators only). */
  targets: z.array(target(), { error: 'expected a list of fence targets ({node, levels})' }).max(7, { error: 'expected at most 7 targets' }).default([]),
});

export type FencingConfig = z.infer<ReturnType<typeof fencingSchema>>;
export type FenceDeviceConfig = z.infer<ReturnType<typeof device>>;
export type SenseConfig = z.infer<ReturnType<typeof sense>>;

type Issue = { path: PropertyKey[]; message: string };

/** Cross-checks that need the members list: names exist, no self target, backend keys present. */
export function checkFencing(f: FencingConfig, members: Array<{ id: number; name: string; role: string }>, selfName: string): Issue[] {
  const out: Issue[] = [];
  const names = members.map((m) => m.name);
  const byName = new Map(members.map((m) => [m.name, m]));
  const at = (...p: PropertyKey[]) => ['fencing', ...p];
  f.waitForAll.forEach((n, i) => {
    if (!byName.has(n)) out.push({ path: at('waitForAll', i), message: `expected a member name (${names.join(', ')}), got "${n}"` });
  });
  const seen = new Set<string>();
  const boards = new Map<string, number>();
  f.targets.forEach((t, i) => {
    const m = byName.get(t.node);
    if (!m) out.push({ path: at('targets', i, 'node'), message: `expected a member name (${names.join(', ')}), got "${t.node}"` });
    else if (t.node === selfName) out.push({ path: at('targets', i, 'node'), message: 'expected another member: a node never fences itself (its watchdog does that)' });
    else if (m.role === 'witness') out.push({ path: at('targets', i, 'node'), message: `expected a voter: ${t.node} is a witness, which never leads and never needs fencing` });
    else if (m.role === 'observer') out.push({ path: at('targets', i, 'node'), message: `expected a voter: ${t.node} is an observer, which never leads and never needs fencing` });
    if (seen.has(t.node)) out.push({ path: at('targets', i, 'node'), message: `expected each member once; "${t.node}" is listed twice (put its devices in levels)` });
    seen.add(t.node);
    t.levels.forEach((lv, j) =>
      lv.forEach((d, k) => {
        const p = (...rest: PropertyKey[]) => at('targets', i, 'levels', j, k, ...rest);
        if (d.type === 'gpio-relay') {
          if (d.backend === 'led' && d.led === undefined) out.push({ path: p('led'), message: 'missing: expected the LED class name (backend led)' });
          if (d.backend === 'sysfs' && (d.chipLabel === undefined || d.line === undefined)) out.push({ path: p(d.chipLabel === undefined ? 'chipLabel' : 'line'), message: 'missing: expected chipLabel and line (backend sysfs)' });
          if (d.backend === 'gpioset' && (d.chip === undefined || d.line === undefined)) out.push({ path: p(d.chip === undefined ? 'chip' : 'line'), message: 'missing: expected chip and line (backend gpioset)' });
        }
        if (d.type === 'serial-relay') {
          if (d.channel > d.channels) out.push({ path: p('channel'), message: `expected a channel 1..${d.channels} (channels: ${d.channels})` });
          const other = boards.get(d.path);
          if (other !== undefined && other !== d.channels) out.push({ path: p('channels'), message: `expected the same channel count for every device on ${d.path} (${other} elsewhere)` });
          boards.set(d.path, d.channels);
        }
        if (d.type !== 'dev-relay' && d.sense) {
          const s = d.sense;
          if (s.backend === 'sysfs' && s.chipLabel === undefined) out.push({ path: p('sense', 'chipLabel'), message: 'missing: expected chipLabel (sense backend sysfs)' });
          if (s.backend === 'gpioget' && s.chip === undefined) out.push({ path: p('sense', 'chip'), message: 'missing: expected chip (sense backend gpioget)' });
        }
      }),
    );
  });
  return out;
}

/**
 * `engine: bully`: the keys of a `fencing:` section that have no meaning for the bully
 * runtime (daemon/runtime/bully-fencing.ts, file comment), each as {path, message} like
 * checkFencing. Bully has no quorum, hence no lease and no self-fencing: a coordinator
 * cannot notice that it lost a majority, so it never stops feeding a watchdog and a
 * `watchdog-wait` level would declare a board stopped that may still act. Its automatic
 * fences target an earlier coordinator whose token is below ours, never the active one,
 * so `priorityDelayMs` never applies either. Rejected rather than ignored, so that
 * nobody believes a lease or a watchdog protects them.
 */
export function checkBullyFencing(f: FencingConfig): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  const why = 'has no meaning for engine bully: it has no quorum, so no lease and no self-fencing (docs/fencing.md, "Bully")';
  for (const [k, v] of Object.entries(f.activation ?? {})) {
    if (v !== undefined) out.push({ path: ['fencing', 'activation', k], message: `${why}; remove fencing.activation` });
  }
  if (f.watchdog !== undefined) out.push({ path: ['fencing', 'watchdog'], message: `${why}; a bully coordinator never stops feeding a watchdog, so remove fencing.watchdog (and let systemd or nothing hold /dev/watchdog)` });
  if (f.waitForAll.length > 0) out.push({ path: ['fencing', 'waitForAll'], message: 'has no meaning for engine bully: its coordinator only fences earlier coordinators it has heard of, so a first start cannot begin a fence loop; remove the key' });
  if (f.watchdogTimeoutMs !== undefined) out.push({ path: ['fencing', 'watchdogTimeoutMs'], message: `${why}; remove the key` });
  if (f.priorityDelayMs !== undefined) {
    out.push({ path: ['fencing', 'priorityDelayMs'], message: 'has no meaning for engine bully: a bully coordinator only fences earlier coordinators (lower tokens), never the one running the workload; remove the key (delayMs per target and randomDelayMaxMs still apply)' });
  }
  f.targets.forEach((t, i) =>
    t.levels.forEach((lv, j) =>
      lv.forEach((d, k) => {
        if (d.type === 'watchdog-wait') {
          out.push({ path: ['fencing', 'targets', i, 'levels', j, k, 'type'], message: 'expected gpio-relay, serial-relay or dev-relay: watchdog-wait has no meaning for engine bully (a bully board never self-fences, so waiting proves nothing)' });
        }
      }),
    ),
  );
  return out;
}

/**
 * `engine: pbft`: the keys of a `fencing:` section that have no meaning there. A PBFT
 * board fences only on a committed decision of f + 1 members (daemon/runtime/
 * pbft-fencing.ts): no leader, so no activation gate or lease (activation.*,
 * waitForAll), no self-fencing (watchdog, watchdogTimeoutMs, and a watchdog-wait level,
 * which would declare a board down by waiting for a self-fence that never comes), and
 * no "the old leader runs the workload" (priorityDelayMs). Relays, power-sense inputs,
 * per-target delays, randomDelayMaxMs, retries and power-on apply as for the others.
 */
export function checkPbftFencing(f: FencingConfig): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  const why = 'has no meaning for engine pbft: a board fences only on a committed decision of f + 1 members, there is no trusted leader, no lease and no self-fencing (docs/fencing.md, "PBFT")';
  for (const [k, v] of Object.entries(f.activation ?? {})) {
    if (v !== undefined) out.push({ path: ['fencing', 'activation', k], message: `${why}; remove fencing.activation` });
  }
  if (f.watchdog !== undefined) out.push({ path: ['fencing', 'watchdog'], message: `${why}; remove fencing.watchdog` });
  if (f.watchdogTimeoutMs !== undefined) out.push({ path: ['fencing', 'watchdogTimeoutMs'], message: `${why}; remove the key` });
  if (f.waitForAll.length > 0) out.push({ path: ['fencing', 'waitForAll'], message: `${why}; remove the key` });
  if (f.priorityDelayMs !== undefined) out.push({ path: ['fencing', 'priorityDelayMs'], message: `${why} (no board runs the workload alone); remove the key (delayMs per target and randomDelayMaxMs still apply)` });
  f.targets.forEach((t, i) =>
    t.levels.forEach((lv, j) =>
      lv.forEach((d, k) => {
        if (d.type === 'watchdog-wait') out.push({ path: ['fencing', 'targets', i, 'levels', j, k, 'type'], message: 'expected gpio-relay, serial-relay or dev-relay: watchdog-wait has no meaning for engine pbft (a pbft board never self-fences, so waiting proves nothing)' });
      }),
    ),
  );
  return out;
}

/**
 * `engine: etcd` / `engine: zookeeper`: the keys of a `fencing:` section that have no
 * meaning there (daemon/engines/fencing.ts, file comment), each as {path, message}.
 * The service elects one leader at a time and a new leader only fences earlier ones:
 * no fence race to break (randomDelayMaxMs, priorityDelayMs), no first-start fence
 * loop (waitForAll). The leader's lease is the service's (activation.*). A
 * `watchdog-wait` level would declare a board stopped by waiting, which is what the
 * fallback bound (`watchdogTimeoutMs`, or the watchdog device's timeout) already does
 * when a fence is impossible or failed.
 */
export function checkExternalFencing(f: FencingConfig, engine: string): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  const no = `has no meaning for engine ${engine}`;
  for (const [k, v] of Object.entries(f.activation ?? {})) {
    if (v !== undefined) out.push({ path: ['fencing', 'activation', k], message: `${no}: the leader's lease is the ${engine} lease or session (${engine}: ttl and marginMs); remove fencing.activation` });
  }
  if (f.waitForAll.length > 0) out.push({ path: ['fencing', 'waitForAll'], message: `${no}: ${engine} elects the leader, so two boards cannot start a fence loop; remove the key` });
  if (f.priorityDelayMs !== undefined) out.push({ path: ['fencing', 'priorityDelayMs'], message: `${no}: a new leader only fences earlier leaders, never the one running the workload; remove the key` });
  if (f.randomDelayMaxMs !== undefined) out.push({ path: ['fencing', 'randomDelayMaxMs'], message: `${no}: ${engine} elects one leader at a time, so no two nodes race to fence each other and a new leader fences at once; remove the key` });
  f.targets.forEach((t, i) =>
    t.levels.forEach((lv, j) =>
      lv.forEach((d, k) => {
        if (d.type === 'watchdog-wait') {
          out.push({ path: ['fencing', 'targets', i, 'levels', j, k, 'type'], message: `expected gpio-relay, serial-relay or dev-relay: watchdog-wait has no meaning for engine ${engine} (the bound without a relay is fencing.watchdogTimeoutMs)` });
        }
      }),
    ),
  );
  return out;
}
