/**
 * A model of an MQTT broker and its clients, as the consensus layer sees it: QoS 0
 * frames from one board to another (`quorumd/<cluster>/to/<nodeId>`, docs/wire.md), with
 *
 *   - latency: `latencyMinMs` + jitter up to `latencyMaxMs`, uniform or exponential
 *     (truncated at the max); jitter alone lets frames overtake each other;
 *   - loss, duplication, and explicit reordering (an extra delay up to
 *     `reorderExtraMs` for a fraction `reorderRate` of frames);
 *   - partitions: `partition(groups)` drops frames between groups; groups may contain
 *     `BROKER`, and then a board outside the broker's group loses its connection:
 *     after `willDelayMs` its client reports 'down' and the broker publishes its Last
 *     Will (a `peer-gone` event on every other connected board); boards reconnect
 *     every `reconnectMs` until it heals. Boards not listed in any group reach everyone;
 *   - broker restart: every client gets 'down' at once, frames in flight are lost,
 *     pending wills are forgotten (an in-memory broker), clients reconnect when the
 *     broker is back ('up');
 *   - a dropped session (`dropSession`, the partition fault's connection-drop variant):
 *     the client closes it and knows at once, the broker one latency later (will);
 *   - goodbye: a clean close (DISCONNECT after the signed "offline" presence) drops the
 *     will, and the other connected boards hear the goodbye one latency later (a
 *     `peer-goodbye` event, as the real link reports it);
 *   - Last Will: a connection that dies without DISCONNECT is noticed by the broker
 *     after the keepalive timeout (`willDelayMs`, default 1.5 × keepalive, MQTT 3.1.1
 *     §3.1.2.10) on power loss, reset or partition; after a process *crash* the kernel
 *     closes the socket, so the broker notices after one network latency. If the
 *     board reconnects before that, the takeover publishes the will at once (the old
 *     session is closed uncleanly, MQTT 3.1.1 §3.1.4-2).
 *
 * `conditions` is mutable at run time (the fault injector raises loss or reordering).
 */
import type { Done, Link, LinkEvent } from '../hal/interfaces.ts';
import { MAX_NODE_ID, type NodeId } from '../src/types.ts';
import type { Rng } from '../src/rng.ts';
import type { DeathCause, LinkPort, Proc } from './proc.ts';
import type { SimContext, SimEvent } from './scheduler.ts';

/** Stands for the broker's host in `partition()` groups (node ids are 1..254). */
export const BROKER: NodeId = 255;

/** Network behaviour; every field can be changed while the world runs. */
export interface MqttConditions {
  /** Smallest one-way board→broker→board latency (ms). Default 1: a LAN. */
  latencyMinMs: number;
  /** Largest latency (ms). Default 5: Wi-Fi and a busy broker host. */
  latencyMaxMs: number;
  /** Jitter shape: uniform on [min, max], or exponential with mean (max−min)/4 truncated at max. Default 'uniform'. */
  jitter: 'uniform' | 'exponential';
  /** Probability a frame is lost. Default 0. */
  lossRate: number;
  /** Probability a frame is delivered twice (independent latencies). Default 0. */
  dupRate: number;
  /** Probability a frame gets an extra delay in [0, reorderExtraMs]. Default 0. */
  reorderRate: number;
  /** Largest extra delay for reordered frames (ms). Default 20. */
  reorderExtraMs: number;
}

export interface MqttOptions extends Partial<MqttConditions> {
  /** MQTT keepalive (ms). Default 2000: short, so that a dead peer is noticed quickly. */
  keepaliveMs?: number;
  /** Time from an unclean death to the Last Will (ms). Default 1.5 × keepaliveMs (MQTT 3.1.1 §3.1.2.10). */
  willDelayMs?: number;
  /** Interval between reconnection attempts (ms). Default 1000 (mqtt.js reconnectPeriod). */
  reconnectMs?: number;
  /** Largest frame a client accepts to send (bytes). Default 65536 (docs/wire.md). */
  maxFrame?: number;
  /**
   * Whether a clean close tells the other boards (a `peer-goodbye` event, as the real
   * link reports a live "offline" presence). Default true; false models a link that
   * reports nothing on a clean close (the tests' control).
   */
  goodbyes?: boolean;
}

export interface MqttStats {
  sent: number;
  delivered: number;
  /** Random loss (`lossRate`). */
  lost: number;
  duplicated: number;
  reordered: number;
  /** Dropped because a partition separates sender, receiver or broker. */
  droppedPartition: number;
  /** Sender not connected, broker down, or receiver not connected at send time. */
  droppedDisconnected: number;
  /** Lost in flight: broker restarted or receiver's connection died before delivery. */
  droppedInFlight: number;
  /** Last Wills published. */
  wills: number;
  /** Orderly goodbyes published (a client's clean DISCONNECT). */
  goodbyes: number;
}

/** Size of the broker's frame-copy slabs (Broker.copyFrame). */
const BROKER_SLAB_BYTES = 16 * 1024;

interface Delivery {
  broker: Broker;
  from: NodeId;
  to: MqttClient;
  connId: number;
  epoch: number;
  frame: Uint8Array;
  id: number;
}

interface WillEvent {
  broker: Broker;
  to: MqttClient;
  connId: number;
  epoch: number;
  peer: NodeId;
  /** A Last Will (peer-gone) or an orderly goodbye (peer-goodbye). */
  kind: 'peer-gone' | 'peer-goodbye';
}

function checkProb(name: string, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new RangeError(`MqttOptions.${name}: expected a probability in [0, 1], got ${String(v)}`);
}
function checkMs(name: string, v: unknown, min = 0): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RangeError(`MqttOptions.${name}: expected a finite number of ms ≥ ${min}, got ${String(v)}`);
}

export class Broker {
  readonly conditions: MqttConditions;
  readonly keepaliveMs: number;
  readonly willDelayMs: number;
  readonly reconnectMs: number;
  readonly maxFrame: number;
  readonly goodbyes: boolean;
  readonly stats: MqttStats = {
    sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0,
    droppedPartition: 0, droppedDisconnected: 0, droppedInFlight: 0, wills: 0, goodbyes: 0,
  };
  private readonly clients = new Map<NodeId, MqttClient>();
  private groups: Map<NodeId, number> | null = null;
  private upFlag = true;
  /** Bumped at every broker restart: frames and wills in flight belong to an epoch. */
  epoch = 0;
  private frameIds = 0;
  /**
   * The broker's copies of frames are cut from one slab (as the codec does for the frames
   * it seals, src/wire/codec.ts allocFrame): `new Uint8Array(n)` above 64 bytes gets a
   * backing store of its own, and that was one per frame sent. Each copy is its own
   * disjoint range, never written after the copy; a copy kept alive keeps its slab alive.
   */
  private slab = new ArrayBuffer(BROKER_SLAB_BYTES);
  private slabUsed = 0;
  private restartEv: SimEvent | null = null;

  constructor(
    private readonly ctx: SimContext,
    private readonly rng: Rng,
    opts: MqttOptions = {},
  ) {
    const c: MqttConditions = {
      latencyMinMs: opts.latencyMinMs ?? 1,
      latencyMaxMs: opts.latencyMaxMs ?? 5,
      jitter: opts.jitter ?? 'uniform',
      lossRate: opts.lossRate ?? 0,
      dupRate: opts.dupRate ?? 0,
      reorderRate: opts.reorderRate ?? 0,
      reorderExtraMs: opts.reorderExtraMs ?? 20,
    };
    Broker.validate(c);
    this.conditions = c;
    this.keepaliveMs = opts.keepaliveMs ?? 2000;
    checkMs('keepaliveMs', this.keepaliveMs, 1);
    this.willDelayMs = opts.willDelayMs ?? 1.5 * this.keepaliveMs;
    checkMs('willDelayMs', this.willDelayMs);
    this.reconnectMs = opts.reconnectMs ?? 1000;
    checkMs('reconnectMs', this.reconnectMs, 1);
    this.maxFrame = opts.maxFrame ?? 65536;
    if (!Number.isInteger(this.maxFrame) || this.maxFrame < 1) throw new RangeError(`MqttOptions.maxFrame: expected a positive integer, got ${String(opts.maxFrame)}`);
    if (opts.goodbyes !== undefined && typeof opts.goodbyes !== 'boolean') throw new RangeError(`MqttOptions.goodbyes: expected true or false, got ${String(opts.goodbyes)}`);
    this.goodbyes = opts.goodbyes ?? true;
  }

  /** Throws a clear error if `c` is not a valid set of conditions. */
  static validate(c: MqttConditions): void {
    checkMs('latencyMinMs', c.latencyMinMs);
    checkMs('latencyMaxMs', c.latencyMaxMs);
    if (c.latencyMaxMs < c.latencyMinMs) throw new RangeError(`MqttOptions: latencyMaxMs (${c.latencyMaxMs}) < latencyMinMs (${c.latencyMinMs})`);
    if (c.jitter !== 'uniform' && c.jitter !== 'exponential') throw new RangeError(`MqttOptions.jitter: expected 'uniform' or 'exponential', got ${String(c.jitter)}`);
    checkProb('lossRate', c.lossRate);
    checkProb('dupRate', c.dupRate);
    checkProb('reorderRate', c.reorderRate);
    checkMs('reorderExtraMs', c.reorderExtraMs);
  }

  /** Changes conditions (validated; the old ones stay if the new ones are bad). */
  setConditions(patch: Partial<MqttConditions>): void {
    const next = { ...this.conditions, ...patch };
    Broker.validate(next);
    Object.assign(this.conditions, next);
    this.ctx.log(`mqtt conditions ${JSON.stringify(patch)}`);
  }

  get up(): boolean {
    return this.upFlag;
  }

  /** Connects a board: the returned port gives each of its processes an MQTT `Link`. */
  attach(node: NodeId, label = `n${node}`): MqttClient {
    if (!Number.isInteger(node) || node < 1 || node > MAX_NODE_ID) throw new RangeError(`Broker.attach: node id must be an integer 1..${MAX_NODE_ID}, got ${String(node)}`);
    if (this.clients.has(node)) throw new Error(`Broker.attach: node ${node} is already attached`);
    const c = new MqttClient(this, this.ctx, node, label);
    this.clients.set(node, c);
    return c;
  }

  client(node: NodeId): MqttClient | undefined {
    return this.clients.get(node);
  }

  // ---- reachability ---------------------------------------------------------------

  /** True if a and b can exchange packets under the current partition. */
  reach(a: NodeId, b: NodeId): boolean {
    const g = this.groups;
    if (g === null) return true;
    const ga = g.get(a);
    const gb = g.get(b);
    return ga === undefined || gb === undefined || ga === gb;
  }

  private passes(from: NodeId, to: NodeId): boolean {
    return this.groups === null || (this.reach(from, BROKER) && this.reach(to, BROKER) && this.reach(from, to));
  }

  /**
   * Splits the network. Each group is a list of node ids (and possibly `BROKER`);
   * a node may appear in one group only. Replaces any earlier partition.
   */
  partition(groups: NodeId[][]): void {
    if (!Array.isArray(groups) || groups.some((g) => !Array.isArray(g))) throw new TypeError('Broker.partition: expected an array of arrays of node ids');
    const m = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const n of g) {
        if (!Number.isInteger(n) || n < 1 || n > BROKER) throw new RangeError(`Broker.partition: bad node id ${String(n)} (expected 1..${MAX_NODE_ID} or BROKER=${BROKER})`);
        if (m.has(n)) throw new RangeError(`Broker.partition: node ${n} appears in more than one group`);
        m.set(n, i);
      }
    });
    this.groups = m;
    this.ctx.log(`mqtt partition ${groups.map((g) => g.join(',')).join('|')}`);
    for (const c of this.clients.values()) c.reachabilityChanged();
  }

  /** Removes the partition. Connections that survived it carry on; dropped ones reconnect. */
  heal(): void {
    if (this.groups === null) return;
    this.groups = null;
    this.ctx.log('mqtt heal');
    for (const c of this.clients.values()) c.reachabilityChanged();
  }

  get partitioned(): boolean {
    return this.groups !== null;
  }

  /**
   * The broker goes down for `downMs`: every connected client gets 'down' now, frames
   * in flight are lost, pending wills are forgotten; then clients reconnect.
   */
  restart(downMs: number): void {
    checkMs('restart downMs', downMs);
    this.ctx.log(`mqtt broker-down ${downMs}`);
    this.upFlag = false;
    this.epoch++;
    this.restartEv?.cancel();
    for (const c of this.clients.values()) c.brokerDown();
    this.restartEv = this.ctx.sched.after(Math.round(downMs * 1000), brokerUp, this);
  }

  /** @internal */
  backUp(): void {
    this.restartEv = null;
    this.upFlag = true;
    this.ctx.log('mqtt broker-up');
    for (const c of this.clients.values()) c.brokerUp();
  }

  // ---- frames ---------------------------------------------------------------------

  /** @internal One-way latency sample (µs). */
  latencyUs(): number {
    const c = this.conditions;
    const lo = c.latencyMinMs * 1000;
    const hi = c.latencyMaxMs * 1000;
    if (hi <= lo) return Math.round(lo);
    if (c.jitter === 'uniform') return Math.round(lo + this.rng.float() * (hi - lo));
    const mean = (hi - lo) / 4;
    const x = -Math.log(1 - this.rng.float()) * mean;
    return Math.round(lo + Math.min(x, hi - lo));
  }

  /** @internal */
  send(from: MqttClient, to: NodeId, frame: Uint8Array): void {
    const st = this.stats;
    st.sent++;
    const id = this.frameIds++;
    const target = this.clients.get(to);
    if (!this.upFlag || !from.connected || target === undefined || !target.connected) {
      st.droppedDisconnected++;
      this.ctx.log(`mqtt x ${id} ${from.node}>${to} disconnected`);
      return;
    }
    if (!this.passes(from.node, to)) {
      st.droppedPartition++;
      this.ctx.log(`mqtt x ${id} ${from.node}>${to} partition`);
      return;
    }
    const c = this.conditions;
    if (this.rng.chance(c.lossRate)) {
      st.lost++;
      this.ctx.log(`mqtt x ${id} ${from.node}>${to} lost`);
      return;
    }
    const copies = this.rng.chance(c.dupRate) ? 2 : 1;
    if (copies === 2) st.duplicated++;
    // The broker's own copy (the sender may reuse its buffer), cut from the broker's slab.
    const data = this.copyFrame(frame);
    for (let k = 0; k < copies; k++) {
      let delay = this.latencyUs();
      if (this.rng.chance(c.reorderRate)) {
        delay += Math.round(this.rng.float() * c.reorderExtraMs * 1000);
        st.reordered++;
      }
      const d: Delivery = { broker: this, from: from.node, to: target, connId: target.connId, epoch: this.epoch, frame: k === 0 ? data : this.copyFrame(data), id };
      this.ctx.sched.after(delay, deliver, d);
    }
    this.ctx.logFields('mqtt s', fmtSend, id, from.node, to, frame.length, copies === 2 ? 1 : 0);
  }

  /** A copy of `frame` the broker owns (from the slab; large frames get their own buffer). */
  private copyFrame(frame: Uint8Array): Uint8Array {
    const n = frame.length;
    if (n > BROKER_SLAB_BYTES / 4) return new Uint8Array(frame);
    if (this.slabUsed + n > BROKER_SLAB_BYTES) {
      this.slab = new ArrayBuffer(BROKER_SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = new Uint8Array(this.slab, this.slabUsed, n);
    out.set(frame);
    this.slabUsed += n;
    return out;
  }

  /** @internal */
  arrive(d: Delivery): void {
    const to = d.to;
    if (d.epoch !== this.epoch || d.connId !== to.connId || !to.connected) {
      this.stats.droppedInFlight++;
      this.ctx.log(`mqtt x ${d.id} ${d.from}>${to.node} in-flight`);
      return;
    }
    if (!this.passes(d.from, to.node)) {
      this.stats.droppedPartition++;
      this.ctx.log(`mqtt x ${d.id} ${d.from}>${to.node} partition`);
      return;
    }
    this.stats.delivered++;
    this.ctx.logFields('mqtt d', fmtDeliver, d.id, d.from, to.node);
    to.deliverFrame(d.frame);
  }

  /** @internal Publishes `peer`'s Last Will to every other connected client it can reach. */
  publishWill(peer: NodeId): void {
    if (!this.upFlag) return;
    this.stats.wills++;
    this.ctx.log(`mqtt will ${peer}`);
    this.tellOthers(peer, 'peer-gone');
  }

  /**
   * @internal `peer` closed its session in order (DISCONNECT after its signed "offline"
   * presence, hal/mqtt/link.ts close()): the broker drops its will and every other
   * connected client it can reach hears the goodbye, which the real link reports as
   * peer-goodbye (a live goodbye; none is retained for a client connecting later here).
   */
  publishGoodbye(peer: NodeId): void {
    if (!this.upFlag || !this.goodbyes) return;
    this.stats.goodbyes++;
    this.ctx.log(`mqtt goodbye ${peer}`);
    this.tellOthers(peer, 'peer-goodbye');
  }

  private tellOthers(peer: NodeId, kind: WillEvent['kind']): void {
    for (const c of this.clients.values()) {
      if (c.node === peer || !c.connected || !this.reach(c.node, BROKER)) continue;
      const w: WillEvent = { broker: this, to: c, connId: c.connId, epoch: this.epoch, peer, kind };
      this.ctx.sched.after(this.latencyUs(), deliverWill, w);
    }
  }

  /** @internal */
  arriveWill(w: WillEvent): void {
    if (w.epoch !== this.epoch || w.connId !== w.to.connId || !w.to.connected) return;
    this.ctx.log(`mqtt ${w.kind} ${w.peer}>${w.to.node}`);
    w.to.emit({ kind: w.kind, peer: w.peer });
  }
}

function deliver(d: Delivery): void {
  d.broker.arrive(d);
}
function deliverWill(w: WillEvent): void {
  w.broker.arriveWill(w);
}
function brokerUp(b: Broker): void {
  b.backUp();
}

/**
 * One board's MQTT client (the hardware side of its network interface plus the
 * client library's reconnect logic). Each process gets a fresh `MqttLink` from it.
 */
export class MqttClient implements LinkPort {
  /** True while the board holds a live session with the broker. */
  connected = false;
  /** Bumped whenever a session starts or ends: deliveries and wills carry it. */
  connId = 0;
  private current: MqttLink | null = null;
  private proc: Proc | null = null;
  private willEv: SimEvent | null = null;
  private connectEv: SimEvent | null = null;
  private detectEv: SimEvent | null = null;

  constructor(
    private readonly broker: Broker,
    private readonly ctx: SimContext,
    readonly node: NodeId,
    private readonly label: string,
  ) {}

  open(proc: Proc): Link {
    this.proc = proc;
    this.current = new MqttLink(this, proc, this.broker.maxFrame);
    this.scheduleConnect(0);
    return this.current;
  }

  processDied(cause: DeathCause): void {
    this.proc = null;
    this.current = null;
    this.connectEv?.cancel();
    this.connectEv = null;
    this.detectEv?.cancel();
    this.detectEv = null;
    if (!this.connected) return;
    this.endSession(`process ${cause}`);
    // A crash closes the socket (the kernel sends FIN): the broker knows at once.
    // Power loss or a reset sends nothing: the broker waits for the keepalive timeout.
    const delayUs = cause === 'crash' ? this.broker.latencyUs() : Math.round(this.broker.willDelayMs * 1000);
    this.armWill(delayUs);
  }

  /**
   * The client side drops its session (a ping timeout, an interface reset) while the
   * board runs: the board's link reports it at once ('session-lost', 'down'), the broker
   * sees the FIN one latency later and publishes the Last Will, and the client
   * reconnects after `reconnectMs` (a takeover if the will is still pending).
   */
  dropSession(): void {
    if (!this.connected || this.proc === null) return;
    this.endSession('dropped by the client');
    this.emit({ kind: 'session-lost', reason: 'connection dropped by the client' });
    this.emit({ kind: 'down', reason: 'connection dropped by the client' });
    this.armWill(this.broker.latencyUs());
    this.scheduleConnect(Math.round(this.broker.reconnectMs * 1000));
  }

  /** Closes the session cleanly (the goodbye, then DISCONNECT): no will. */
  disconnect(): void {
    this.connectEv?.cancel();
    this.connectEv = null;
    this.detectEv?.cancel();
    this.detectEv = null;
    this.current = null;
    this.proc = null;
    if (this.connected) {
      this.endSession('disconnect');
      // The goodbye and the DISCONNECT reach only a broker this board still reaches; cut
      // off, the broker never sees them and publishes the will after the keepalive timeout.
      if (this.broker.reach(this.node, BROKER)) this.broker.publishGoodbye(this.node);
      else this.armWill(Math.round(this.broker.willDelayMs * 1000));
    }
  }

  private endSession(why: string): void {
    this.connected = false;
    this.connId++;
    this.ctx.log(`mqtt ${this.label} session-end ${why}`);
  }

  private armWill(delayUs: number): void {
    this.willEv?.cancel();
    this.willEv = this.ctx.sched.after(delayUs, fireWill, this);
  }

  /** @internal */
  willDue(): void {
    this.willEv = null;
    this.broker.publishWill(this.node);
  }

  private scheduleConnect(extraUs: number): void {
    if (this.proc === null || this.connectEv !== null) return;
    // TCP handshake + CONNECT/CONNACK: about two one-way latencies.
    const t = extraUs + 2 * this.broker.latencyUs();
    this.connectEv = this.ctx.sched.after(t, tryConnect, this);
  }

  /** @internal */
  attempt(): void {
    this.connectEv = null;
    const proc = this.proc;
    if (proc === null || !proc.alive || this.connected) return;
    if (!this.broker.up || !this.broker.reach(this.node, BROKER)) {
      this.scheduleConnect(Math.round(this.broker.reconnectMs * 1000));
      return;
    }
    if (this.willEv !== null) {
      // Session takeover: the old, uncleanly closed session ends now, and its will goes out.
      this.willEv.cancel();
      this.willEv = null;
      this.broker.publishWill(this.node);
    }
    this.connected = true;
    this.connId++;
    this.ctx.log(`mqtt ${this.label} connected`);
    this.emit({ kind: 'up' });
  }

  /** @internal The broker went down: the TCP connection resets at once. */
  brokerDown(): void {
    this.willEv?.cancel();
    this.willEv = null;
    this.detectEv?.cancel();
    this.detectEv = null;
    if (!this.connected) return;
    this.endSession('broker down');
    this.emit({ kind: 'down', reason: 'broker connection reset' });
  }

  /** @internal */
  brokerUp(): void {
    if (this.proc === null || this.connected) return;
    this.connectEv?.cancel();
    this.connectEv = null;
    this.scheduleConnect(0);
  }

  /** @internal The partition changed: a connected board cut off from the broker times out. */
  reachabilityChanged(): void {
    if (!this.connected || this.detectEv !== null) return;
    if (this.broker.reach(this.node, BROKER)) return;
    this.detectEv = this.ctx.sched.after(Math.round(this.broker.willDelayMs * 1000), detectTimeout, this);
  }

  /** @internal */
  keepaliveCheck(): void {
    this.detectEv = null;
    if (!this.connected) return;
    if (this.broker.reach(this.node, BROKER)) return; // healed in time: the session survived
    this.endSession('keepalive timeout');
    this.emit({ kind: 'session-lost', reason: 'keepalive timeout (broker unreachable)' });
    this.emit({ kind: 'down', reason: 'keepalive timeout (broker unreachable)' });
    this.broker.publishWill(this.node);
    this.scheduleConnect(Math.round(this.broker.reconnectMs * 1000));
  }

  /** @internal */
  deliverFrame(frame: Uint8Array): void {
    this.current?.frameIn(frame);
  }

  /** @internal */
  emit(ev: LinkEvent): void {
    this.current?.eventIn(ev);
  }

  /** @internal */
  sendFrom(to: NodeId, frame: Uint8Array): void {
    this.broker.send(this, to, frame);
  }
}

function fireWill(c: MqttClient): void {
  c.willDue();
}
function tryConnect(c: MqttClient): void {
  c.attempt();
}
function detectTimeout(c: MqttClient): void {
  c.keepaliveCheck();
}

/** The `Link` one process sees ('mqtt'). */
export class MqttLink implements Link {
  readonly name = 'mqtt';
  private frameHandler: ((frame: Uint8Array) => void) | null = null;
  private eventHandler: ((ev: LinkEvent) => void) | null = null;
  private closed = false;

  constructor(
    private readonly client: MqttClient,
    private readonly proc: Proc,
    readonly maxFrame: number,
  ) {}

  send(to: NodeId, frame: Uint8Array): void {
    if (!Number.isInteger(to) || to < 1 || to > MAX_NODE_ID) throw new RangeError(`mqtt Link.send: 'to' must be a node id 1..${MAX_NODE_ID}, got ${String(to)}`);
    if (!(frame instanceof Uint8Array)) throw new TypeError(`mqtt Link.send: frame must be a Uint8Array, got ${typeof frame}`);
    if (frame.length > this.maxFrame) throw new RangeError(`mqtt Link.send: frame of ${frame.length} bytes exceeds maxFrame ${this.maxFrame}`);
    if (!this.proc.alive) return this.proc.stale('mqtt.send');
    if (this.closed) return;
    this.client.sendFrom(to, frame);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    if (typeof handler !== 'function') throw new TypeError('mqtt Link.onFrame: expected a function');
    this.frameHandler = handler;
  }

  onEvent(handler: (ev: LinkEvent) => void): void {
    if (typeof handler !== 'function') throw new TypeError('mqtt Link.onEvent: expected a function');
    this.eventHandler = handler;
  }

  close(done?: Done): void {
    if (!this.proc.alive) return this.proc.stale('mqtt.close');
    if (!this.closed) {
      this.closed = true;
      this.client.disconnect();
    }
    if (done !== undefined) done(null);
  }

  /** @internal */
  frameIn(frame: Uint8Array): void {
    if (this.proc.stalled) return this.proc.hold(() => this.frameIn(frame));
    if (this.proc.alive && !this.closed) this.frameHandler?.(frame);
  }

  /** @internal */
  eventIn(ev: LinkEvent): void {
    if (this.proc.stalled) return this.proc.hold(() => this.eventIn(ev));
    if (this.proc.alive && !this.closed) this.eventHandler?.(ev);
  }
}

// Per-frame trace lines, recorded as numbers (SimContext.logFields) and formatted only for trace.last().
/** `mqtt s <id> <from>> <to> <bytes>[ dup]` */
function fmtSend(tag: string, id: number, from: number, to: number, bytes: number, dup: number): string {
  return `${tag} ${id} ${from}>${to} ${bytes}${dup ? ' dup' : ''}`;
}
/** `mqtt d <id> <from>><to>` */
function fmtDeliver(tag: string, id: number, from: number, to: number): string {
  return `${tag} ${id} ${from}>${to}`;
}
