/**
 * The wire endpoint of a node runtime: where a frame is sealed and put on the links,
 * and where an incoming frame is opened (authenticated, replay-checked) before the
 * runtime sees its message. Used by the node runtime (engine-node.ts)
 * for every engine.
 *
 * Sending: every message is sealed once and the same frame goes out on every link
 * (multi-link redundancy; the receiver's replay window drops the copies), except a
 * point-to-point link (a serial wire, `link.peer`) that does not reach the
 * destination, or a link whose maxFrame is smaller than the frame.
 *
 * bootId persistence: when the sealer's sequence number wraps it moves the stamp's
 * bootId forward (src/wire/auth.ts `persistBootId`). That new bootId must be durable
 * before any frame stamped with it leaves, or a restart could reuse a (bootId, seq)
 * that receivers already accepted. The endpoint asks the runtime to persist it
 * (`persistNextBoot`) and holds every frame sealed meanwhile until that write is
 * durable; a failed write is fatal for the node.
 *
 * Receiving: frames that fail to open are counted by reason (the opener's drop
 * counters, for status) and logged at debug level, except replays, which are routine
 * (every frame arrives once per link). A frame of a shape this build does not read — a
 * wire version, a message type or a field value it does not know — is what a member of
 * another quorumd version sends (during a rolling upgrade): that is a warning, at most
 * one per reason a minute with the number left out, so that a node that cannot
 * understand a peer says so in its log and not only in a counter.
 */
import { FrameOpener, FrameSealer, Sender, type Keyring } from '../../src/wire/auth.ts';
import { MsgType, type Message } from '../../src/wire/messages.ts';
import type { DropCounters, DropReason } from '../../src/wire/codec.ts';
import type { NodeId } from '../../src/types.ts';
import type { Done, Link, LinkEvent } from '../../hal/interfaces.ts';
import type { Logger } from './logger.ts';

export interface WireEndpointOptions {
  /** This node (the opener drops frames addressed to others). */
  id: NodeId;
  /** Monotonic ms, for when each peer was last heard (heardAgoMs). Default: none kept. */
  now?: () => number;
  /** Cluster id on the wire (0..65535). */
  cluster: number;
  keyring: Keyring;
  /**
   * Per-sender frame keys (engine pbft, pbft-host.ts): frames are sealed with
   * `senderKeys(id)` and a frame from `from` must verify under `senderKeys(from)`.
   */
  senderKeys?: (node: NodeId) => Keyring | undefined;
  /** Largest frame sealed or accepted: the smallest link's maxFrame, at most DEFAULT_MAX_FRAME. */
  maxFrame: number;
  links: Link[];
  /** This boot's 16-bit wire bootId (durable before the endpoint is built). */
  bootId: number;
  log: Logger;
  /** Whether the runtime still runs: a persist that completes after a stop is ignored. */
  running: () => boolean;
  /** A persist of the next bootId failed: the node stops (the supervisor restarts it). */
  fatal: (err: Error) => void;
  /**
   * The sealer's seq wrapped and moved the wire bootId to `bootId`: make the runtime's
   * boot counter durable and call `done` when it is (frames wait until then).
   */
  persistNextBoot: (bootId: number, done: Done) => void;
}

/**
 * The warning for each drop reason that is logged (warnShape): a message and a hint.
 * Besides another build's frames: frames under another cluster key (`bad-tag`) or id
 * (`unknown-cluster`) are what a member configured with the wrong key file or id sends —
 * it then never joins, and said nothing but a debug line (measured: a member with
 * another key sat as pre-candidate for good, its peers counting 59 bad-tag drops in
 * 10 s and logging nothing above debug). They are also what a sender without the key
 * forges: hence the same bound, one line per reason a minute.
 */
const OTHER_BUILD = ['frame dropped: a shape this build does not read', 'a member runs another quorumd version (or a foreign sender shares the broker): make every member run the same build (docs/install-pi.md, "Upgrading")'] as const;
const WARNINGS = {
  'bad-version': OTHER_BUILD,
  'unknown-type': OTHER_BUILD,
  'bad-field': OTHER_BUILD,
  'bad-tag': ['frame dropped: not authenticated under this cluster key', "a member whose cluster.keyFile holds another key (every member needs the same key: compare the files' sha256sum), a key rotation not finished on every member (docs/security.md), or a sender without the key"],
  'unknown-cluster': ['frame dropped: for another cluster id', 'a member whose cluster.id differs from this one (every member needs the same), or another cluster using the same broker topics'],
} as const;

/** At most one warning per reason this often about frames of a shape this build does not read. */
const SHAPE_WARN_EVERY_MS = 60_000;

export class WireEndpoint {
  private readonly o: WireEndpointOptions;
  private readonly sealer: FrameSealer;
  private readonly opener: FrameOpener;
  /** When an authenticated frame of each sender last arrived (monotonic ms; -Infinity: never). */
  private readonly heard = new Float64Array(256).fill(-Infinity);
  /** The same per link (by link name): which wire still carries each peer. */
  private readonly heardOn = new Map<string, Float64Array>();
  /** Warnings about frames of a shape this build does not read: when each reason was last logged, and the drops since. */
  private readonly shapeWarned = new Map<DropReason, { at: number; since: number }>();
  /** Frames sealed while a bootId write is in flight (undefined when none is). */
  private holding: Array<{ to: NodeId; frame: Uint8Array }> | undefined;

  constructor(o: WireEndpointOptions) {
    this.o = o;
    const own = o.senderKeys ? o.senderKeys(o.id) : o.keyring;
    if (!own) throw new RangeError(`WireEndpoint: no frame key for this node (${o.id})`);
    this.sealer = new FrameSealer({ cluster: o.cluster, keyring: own, sender: new Sender(o.bootId), maxFrame: o.maxFrame });
    this.opener = new FrameOpener({ cluster: o.cluster, keyring: o.keyring, self: o.id, maxFrame: o.maxFrame, ...(o.senderKeys ? { senderKeyring: o.senderKeys } : {}) });
  }

  /** Frames accepted since boot. */
  get accepted(): number {
    return this.opener.accepted;
  }

  /** A copy of the drop counters (by reason). */
  drops(): DropCounters {
    return { ...this.opener.drops };
  }

  /**
   * Listens on every link: each authenticated message goes to `onMessage`, each link
   * event to `onEvent` with its link. Nothing is delivered while the runtime is not running.
   */
  listen(onMessage: (m: Message) => void, onEvent: (link: Link, ev: LinkEvent) => void): void {
    for (const link of this.o.links) {
      link.onFrame((f) => this.onFrame(f, onMessage, link.name));
      link.onEvent((ev) => {
        if (this.o.running()) onEvent(link, ev);
      });
    }
  }

  /** Seals `m` once and puts it on every link that reaches `m.to` (held while a new bootId is not durable yet). */
  send(m: Message): void {
    const o = this.o;
    let sealed;
    try {
      sealed = this.sealer.seal(m);
    } catch (e) {
      o.log('error', 'cannot seal message', { node: o.id, type: MsgType[m.type], to: m.to, error: (e as Error).message });
      return;
    }
    if (sealed.persistBootId) {
      // seq wrapped: the new bootId must be durable before any frame stamped with it leaves.
      this.holding ??= [];
      o.persistNextBoot(sealed.env.bootId, (err) => {
        if (!o.running()) return;
        if (err) return o.fatal(err);
        const held = this.holding ?? [];
        this.holding = undefined;
        for (const h of held) this.transmit(h.to, h.frame);
      });
    }
    if (this.holding) this.holding.push({ to: m.to, frame: sealed.frame });
    else this.transmit(m.to, sealed.frame);
  }

  private transmit(to: NodeId, frame: Uint8Array): void {
    for (const link of this.o.links) {
      // A point-to-point link (serial wire) reaches only its peer.
      const peer = (link as { peer?: unknown }).peer;
      if (typeof peer === 'number' && peer !== to) continue;
      if (frame.length > link.maxFrame) continue;
      link.send(to, frame);
    }
  }

  private onFrame(frame: Uint8Array, onMessage: (m: Message) => void, linkName: string): void {
    if (!this.o.running()) return;
    const r = this.opener.open(frame);
    if (!r.ok) {
      if (r.reason === 'bad-version' || r.reason === 'unknown-type' || r.reason === 'bad-field' || r.reason === 'bad-tag' || r.reason === 'unknown-cluster') this.warnShape(r.reason, r.detail);
      else if (r.reason !== 'replay') this.o.log('debug', 'frame dropped', { node: this.o.id, reason: r.reason, detail: r.detail });
      else if (r.from !== undefined && this.o.now) this.heardOnLink(linkName, r.from, this.o.now());
      return;
    }
    if (this.o.now) {
      const t = this.o.now();
      this.heard[r.msg.from] = t;
      this.heardOnLink(linkName, r.msg.from, t);
    }
    onMessage(r.msg);
  }

  /** A frame of a shape this build does not read: a warning, at most one per reason a minute (without a clock: the first only). */
  private warnShape(reason: DropReason, detail: string): void {
    const now = this.o.now?.();
    const w = this.shapeWarned.get(reason);
    if (w && (now === undefined || now - w.at < SHAPE_WARN_EVERY_MS)) {
      w.since++;
      return;
    }
    this.shapeWarned.set(reason, { at: now ?? 0, since: 0 });
    const [msg, hint] = WARNINGS[reason as keyof typeof WARNINGS] ?? OTHER_BUILD;
    this.o.log('warn', msg, {
      node: this.o.id,
      reason,
      detail: detail.length > 200 ? `${detail.slice(0, 200)}…` : detail,
      ...(w ? { alsoDropped: w.since } : {}),
      hint,
    });
  }

  private heardOnLink(linkName: string, from: NodeId, t: number): void {
    let perLink = this.heardOn.get(linkName);
    if (!perLink) this.heardOn.set(linkName, (perLink = new Float64Array(256).fill(-Infinity)));
    perLink[from] = t;
  }

  /**
   * How long ago an authenticated frame of `peer` arrived (ms), undefined if never in
   * this boot. A node heard from a moment ago is alive, whatever an operator says
   * (`quorumd fence confirm` of it is refused).
   */
  heardAgoMs(peer: NodeId, now: number): number | undefined {
    const t = this.heard[peer];
    return t === undefined || t === -Infinity ? undefined : now - t;
  }

  /**
   * The same on each link (link name → ms ago, null if never on that link): a frame of
   * a peer arrives once per link that reaches it, so this shows which links still
   * carry it (only the first copy is accepted; the others are authenticated replays and count here).
   */
  heardOnLinks(peer: NodeId, now: number): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const link of this.o.links) {
      const t = this.heardOn.get(link.name)?.[peer];
      out[link.name] = t === undefined || t === -Infinity ? null : now - t;
    }
    return out;
  }

  /** Logs a link event other than peer-gone (up, down with its reason). */
  static logLinkEvent(log: Logger, id: NodeId, link: Link, ev: LinkEvent): void {
    // One line when a link goes down and one when it is back (with the outage's length,
    // attempts and last error): a broker that stays away does not fill the log.
    const extra =
      ev.kind === 'down' || ev.kind === 'session-lost'
        ? { reason: ev.reason }
        : ev.kind === 'up' && ev.outageMs !== undefined
          ? { outageMs: Math.round(ev.outageMs), attempts: ev.attempts, ...(ev.lastError !== undefined ? { lastError: ev.lastError } : {}) }
          : {};
    log('info', `link ${ev.kind}`, { node: id, link: link.name, ...extra });
  }
}
