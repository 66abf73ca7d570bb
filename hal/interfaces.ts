/**
 * The hardware abstraction layer: what a node runtime needs from a board.
 *
 * Two families implement these interfaces:
 *   - hal/ backends for real Linux boards (MQTT, serial, files, GPIO, watchdog);
 *   - firmware-sim/ models, driven by the deterministic scheduler.
 *
 * The interfaces are callback-based and never return Promises: the simulator runs
 * whole clusters in one synchronous event loop in virtual time, and Promise
 * continuations would escape its ordering. Real backends call back from Node's
 * event loop. A callback may fire synchronously or later, but at most once, and
 * never after the owning board lost power (in the simulator) or after close().
 */
import type { NodeId } from '../src/types.ts';

export type Done = (err: Error | null) => void;
export type DoneWith<T> = (err: Error | null, value?: T) => void;

/** Cancels a timer. Calling it twice, or after the timer fired, is harmless. */
export type Cancel = () => void;

/**
 * Time on a board. Timeouts and leases use only `monotonicMs`; `wallMs` is for
 * logs and humans and may jump (NTP sync on a board without RTC).
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin; never goes backwards; may run fast or slow (drift). */
  monotonicMs(): number;
  /** Wall-clock milliseconds since the Unix epoch; may jump in either direction. */
  wallMs(): number;
  /** Calls `fn` once after `ms` of this board's monotonic time. */
  setTimer(ms: number, fn: () => void): Cancel;
  /**
   * Optional: calls `fn` once, right after the I/O callbacks of the current event-loop
   * turn (Node's setImmediate), so that work which each of many inputs of one turn asks
   * for runs once for all of them. Without it (the simulator, test fakes) callers do the
   * work at once.
   */
  soon?(fn: () => void): void;
}

export type LinkEvent =
  /**
   * The link is usable (again). After an outage the link may say how long it lasted and
   * how many connection attempts it took (for one summary log line per outage).
   */
  | { kind: 'up'; outageMs?: number; attempts?: number; lastError?: string }
  | { kind: 'down'; reason: string }
  /**
   * One of the link's sessions through a relay ended without an orderly close (an MQTT
   * broker connection dropped, while others may still be up): the relay may now tell
   * the peers that this node is gone (Last Will). Emitted before the relay can have
   * done so for a close this side made or saw; a leader stops counting earlier
   * heartbeat rounds toward its read lease (RaftNode.dropLease).
   */
  | {
      kind: 'session-lost';
      reason: string;
      /**
       * Set by a link of direct connections (TCP): the connection to this peer ended
       * (closed by this side, or seen closing: FIN, RST, a socket error). That peer may
       * now act on a will of this node (see `Link.reaches`): a leader drops its lease as
       * above, and a will held for that peer may count now.
       */
      peer?: NodeId;
    }
  /** The transport learned that a peer's connection died (e.g. MQTT Last Will). */
  | { kind: 'peer-gone'; peer: NodeId }
  /**
   * The peer said goodbye: it closed its link in order (MQTT: its signed "offline"
   * presence, live, and no connected broker shows it online any more). A node closes
   * its links only after its runtime stopped (EngineRuntime.stop), so a goodbye comes
   * after the last message it sent through that link and after it served its last read;
   * the runtime takes it as the same hint as a will (docs/mqtt.md, "The goodbye").
   */
  | { kind: 'peer-goodbye'; peer: NodeId };

/**
 * A way to carry authenticated frames between nodes: an MQTT broker, a serial wire,
 * an RS-485 bus. A link moves opaque frames; authentication and decoding happen
 * above it. Delivery is best-effort: frames may be lost, duplicated or reordered.
 */
export interface Link {
  readonly name: string;
  /** Largest frame (bytes, before link framing) this link carries. */
  readonly maxFrame: number;
  /** Sends one frame to `to`. Never throws for transport problems; they surface as events or loss. */
  send(to: NodeId, frame: Uint8Array): void;
  onFrame(handler: (frame: Uint8Array) => void): void;
  onEvent(handler: (ev: LinkEvent) => void): void;
  close(done?: Done): void;
  /**
   * Optional: whether this link reaches `peer` right now, by what the transport saw,
   * never by a timeout's guess (TCP: an authenticated connection to the peer is open,
   * until FIN, RST, a socket error or this side's own close; MQTT: a connected broker
   * shows the peer online). A will from one link counts only when no other link reaches
   * the peer (daemon/runtime/engine-node.ts, docs/mqtt.md). Links without it are taken
   * to reach every node they carry frames for.
   */
  reaches?(peer: NodeId): boolean;
}

/** An output that switches another board's power (GPIO line to a relay, serial relay board channel). */
export interface Relay {
  readonly name: string;
  /** Drives the relay; `on = true` means the target board is powered. */
  set(on: boolean, done: Done): void;
  /** Reads back the relay state (read-back contact or the driver's view). */
  read(done: DoneWith<boolean>): void;
}

/** An input that tells whether a target board's power rail is live. */
export interface PowerSense {
  readonly name: string;
  read(done: DoneWith<boolean>): void;
}

/**
 * A small flat file system, as much as the durability layer needs, with the
 * semantics of a real one on an SD card:
 *   - write/append/rename/remove change the volatile view at once;
 *   - only `sync(name)` makes a file's content durable, and only `syncDir()` makes
 *     creations, renames and removals durable;
 *   - on power loss, unsynced changes are lost and the last unsynced write may be
 *     torn at any byte.
 * Reads see the volatile view. Reads are synchronous: they happen at start-up.
 */
export interface Storage {
  list(): string[];
  read(name: string): Uint8Array | undefined;
  /** Creates or replaces the whole file. */
  write(name: string, data: Uint8Array): void;
  /** Appends to a file, creating it if missing. */
  append(name: string, data: Uint8Array): void;
  /** Shortens a file to `size` bytes. */
  truncate(name: string, size: number): void;
  rename(from: string, to: string): void;
  remove(name: string): void;
  /** Makes the content of `name` durable (fsync). */
  sync(name: string, done: Done): void;
  /** Makes the directory's entries durable (fsync of the directory). */
  syncDir(done: Done): void;
}

/** A hardware watchdog: if not fed within its timeout, the board resets. */
export interface Watchdog {
  readonly timeoutMs: number;
  feed(): void;
  /** Disarms cleanly (magic close) — only on orderly shutdown. */
  disarm(): void;
}
