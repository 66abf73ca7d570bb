/**
 * Connections per client address, for a server that anybody on its network (or, on
 * loopback, any local user) can connect to before proving who they are: the embedded
 * MQTT broker (hal/mqtt/broker.ts), the HTTP API (daemon/http/server.ts) and the
 * service DNS over TCP (daemon/services/dns.ts).
 *
 * At most `perAddress` connections of one address are held. At the bound a newcomer is
 * not refused: the oldest connection of that address that has not authenticated yet is
 * closed for it (if it is younger than `minIdleMs`, an idle one, below, goes first if
 * there is one: a connection a few milliseconds old is most likely a client whose first
 * request is on its way). Refusing the newcomer let whoever shares an address with a legitimate
 * client (every local user on 127.0.0.1; everything behind a NAT) hold all the slots
 * with silent connections, reopened as they were closed, and keep that client out for
 * as long. Now such a holder mostly closes its own older connections, and a client that
 * authenticates within its first round trip gets in.
 *
 * A server whose connections carry one request after another (HTTP keep-alive) also
 * says when a connection is *idle* (`idle`: its last request answered, none since) and
 * when it is busy again (`busy`). When the address has no unauthenticated connection
 * left, the one of its connections that has been idle the longest is closed for the
 * newcomer, if that was at least `minIdleMs` ago and the caller's `stillIdle` agrees
 * (it can see what this bookkeeping cannot: bytes of a next request already read). An
 * authenticated holder of every slot that sends a request on each connection now and
 * then (a request every 3 s on 128 keep-alive connections kept 24 of 25 CLI calls out)
 * thus loses its idle connections to newcomers too. A connection with a request in
 * progress is never closed for this; only when every connection of the address is busy
 * or authenticated and idle for less than `minIdleMs` is the newcomer refused.
 *
 * With `total`, at most that many connections are held in all: at that bound a newcomer
 * whose address is below its own bound closes the oldest unauthenticated connection (at
 * least `minIdleMs` old) of the address that holds the most connections, else the
 * connection of any address that has been idle the longest (at least `minIdleMs`), else
 * it is refused. Refusing it while silent connections held the bound let whoever has
 * several addresses fill it (a local user has all of 127.0.0.0/8; a LAN host can add
 * addresses at will): with 9 addresses × 128 silent connections, reopened as they
 * closed, 5 of 5 CLI calls from 127.0.0.1 were refused.
 *
 * With `key: addressKey` (the HTTP API and the broker), addresses are counted as
 * `addressKey` names them: all of IPv4's loopback network (127.0.0.0/8, any local user can
 * send from any of it) is one address, and an IPv4 address written as IPv6
 * (`::ffff:10.0.0.5`, a dual-stack listener) is that IPv4 address.
 *
 * Bookkeeping only (times come in as numbers): the caller closes what `admit` says, and
 * tells when a connection authenticated, went idle, got busy and closed. Each of those
 * is a field write, not a change to a shared table: the HTTP server calls `busy` and
 * `idle` on every request, and the choice of whom to close, rare, looks through the
 * address's (or every) connection instead.
 */
/**
 * The address `addr` is counted as (see above): one name for every IPv4 loopback address
 * and for an IPv4 address in IPv6 form. Other addresses are their own.
 */
export function addressKey(addr: string): string {
  const v4 = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
  return v4.startsWith('127.') ? '127.0.0.0/8' : v4;
}

interface Address<S> {
  /** Connections of the address counted now, in the order they came. */
  conns: Set<S>;
  /** Those not authenticated yet, oldest first (a Set keeps insertion order). */
  waiting: Set<S>;
}

interface Counted<S> {
  addr: string;
  a: Address<S>;
  /** When it was admitted (caller's clock, ms). */
  since: number;
  /** When the connection went idle (caller's clock, ms); NaN while busy or before its first request ended. */
  idleSince: number;
  /** A request began on it at some time (`busy`). */
  used: boolean;
}

export type Admission<S> = { refused: true } | { refused: false; evict: S | undefined; idle?: true };

export interface SlotOptions {
  /** Connections held in all; more: the longest-idle connection of any address gives way, or the newcomer is refused. Default: no bound. */
  total?: number;
  /** A connection idle for less than this (ms) is never closed to make room. Default 1000. */
  minIdleMs?: number;
  /** The address a connection's address is counted as (e.g. `addressKey`). Default: itself. */
  key?: (addr: string) => string;
}

export class AddressSlots<S extends object> {
  private readonly byAddress = new Map<string, Address<S>>();
  private readonly counted = new WeakMap<S, Counted<S>>();
  private held = 0;
  readonly total: number;
  readonly minIdleMs: number;
  private readonly key: (addr: string) => string;

  constructor(
    readonly perAddress: number,
    o: SlotOptions = {},
  ) {
    if (!Number.isInteger(perAddress) || perAddress < 1) throw new RangeError(`connections per address: expected an integer >= 1, got ${String(perAddress)}`);
    this.total = o.total ?? Infinity;
    if (this.total !== Infinity && (!Number.isInteger(this.total) || this.total < 1)) throw new RangeError(`connections in all: expected an integer >= 1, got ${String(o.total)}`);
    this.minIdleMs = o.minIdleMs ?? 1000;
    this.key = o.key ?? ((a) => a);
    if (!Number.isFinite(this.minIdleMs) || this.minIdleMs < 0) throw new RangeError(`minimum idle time: expected a number of ms >= 0, got ${String(o.minIdleMs)}`);
  }

  /** Connections counted now, in all. */
  get size(): number {
    return this.held;
  }

  /** Would a connection from `addr` find a bound reached (and so `admit` close one or refuse)? */
  full(addr: string): boolean {
    return this.held >= this.total || (this.byAddress.get(this.key(addr))?.conns.size ?? 0) >= this.perAddress;
  }

  /**
   * Counts `conn` for `addr`. At a bound, `evict` is the connection the caller closes to
   * make room (no longer counted; `idle: true` when it was an idle authenticated one);
   * `refused`: no connection could give way, `conn` is not counted and the caller closes
   * it. `now` is the clock that `idle` was given; `stillIdle` is asked about an idle
   * candidate before it is chosen (false: it is left alone, the next one is tried).
   */
  admit(conn: S, address: string, now = 0, stillIdle: (c: S) => boolean = () => true): Admission<S> {
    const addr = this.key(address);
    let evict: S | undefined;
    let idle = false;
    const mine = this.byAddress.get(addr);
    if (mine !== undefined && mine.conns.size >= this.perAddress) {
      // (Closing one of the address's own also makes room in all.)
      const oldest = mine.waiting.values().next().value;
      if (oldest !== undefined && now - this.counted.get(oldest)!.since >= this.minIdleMs) evict = oldest;
      else {
        // A young unauthenticated connection is most likely a client whose first request
        // is on its way: an idle one gives way first, if there is one.
        evict = this.longestIdle(mine.conns, now, stillIdle);
        idle = evict !== undefined;
        evict ??= oldest;
      }
      if (evict === undefined) return { refused: true };
    } else if (this.held >= this.total) {
      evict = this.oldestWaitingOfLargest(now);
      if (evict === undefined) {
        const all: S[] = [];
        for (const a of this.byAddress.values()) for (const c of a.conns) all.push(c);
        evict = this.longestIdle(all, now, stillIdle);
        idle = evict !== undefined;
      }
      if (evict === undefined) return { refused: true };
    }
    if (evict !== undefined) this.release(evict);
    let a = this.byAddress.get(addr); // (releasing the last one of a bound of 1 removed it)
    if (a === undefined) this.byAddress.set(addr, (a = { conns: new Set(), waiting: new Set() }));
    a.conns.add(conn);
    a.waiting.add(conn);
    this.held++;
    this.counted.set(conn, { addr, a, since: now, idleSince: NaN, used: false });
    return idle ? { refused: false, evict, idle: true } : { refused: false, evict };
  }

  /** `conn` authenticated: only closed to make room once idle (`idle`). */
  authenticated(conn: S): void {
    this.counted.get(conn)?.a.waiting.delete(conn);
  }

  /** `conn` has no request in progress since `now` (the caller's clock, ms). */
  idle(conn: S, now: number): void {
    const c = this.counted.get(conn);
    if (c !== undefined) c.idleSince = now;
  }

  /** A request began on `conn`: never closed to make room until it is idle again. */
  busy(conn: S): void {
    const c = this.counted.get(conn);
    if (c !== undefined) {
      c.idleSince = NaN;
      c.used = true;
    }
  }

  /**
   * How long `conn` has had no request in progress at `now` (ms): since its last request
   * ended, or since it was admitted when none has begun on it; NaN while a request is in
   * progress, or for a connection not counted.
   */
  quietFor(conn: S, now: number): number {
    const c = this.counted.get(conn);
    if (c === undefined) return NaN;
    return now - (c.used ? c.idleSince : c.since);
  }

  /** `conn` closed (or was evicted): no longer counted. Once; later calls do nothing. */
  release(conn: S): void {
    const c = this.counted.get(conn);
    if (c === undefined) return;
    this.counted.delete(conn);
    this.held--;
    c.a.waiting.delete(conn);
    c.a.conns.delete(conn);
    if (c.a.conns.size === 0) this.byAddress.delete(c.addr);
  }

  /**
   * The oldest unauthenticated connection, admitted at least minIdleMs ago, of the address
   * that holds the most connections among those that have one: whoever fills the bound in
   * all from several addresses loses its own first, and a client's connection whose first
   * request is on its way (younger) is left alone.
   */
  private oldestWaitingOfLargest(now: number): S | undefined {
    let best: S | undefined;
    let most = 0;
    for (const a of this.byAddress.values()) {
      if (a.conns.size <= most) continue;
      const oldest = a.waiting.values().next().value;
      if (oldest === undefined || now - this.counted.get(oldest)!.since < this.minIdleMs) continue;
      best = oldest;
      most = a.conns.size;
    }
    return best;
  }

  /**
   * Of `conns`, the authenticated connection idle the longest, for at least minIdleMs,
   * that `stillIdle` confirms (oldest idle first: the one a client is least likely to be
   * about to use).
   */
  private longestIdle(conns: Iterable<S>, now: number, stillIdle: (c: S) => boolean): S | undefined {
    const found: { conn: S; since: number }[] = [];
    for (const conn of conns) {
      const c = this.counted.get(conn);
      if (c === undefined || Number.isNaN(c.idleSince) || c.a.waiting.has(conn)) continue;
      if (now - c.idleSince >= this.minIdleMs) found.push({ conn, since: c.idleSince });
    }
    found.sort((x, y) => x.since - y.since);
    for (const f of found) if (stillIdle(f.conn)) return f.conn;
    return undefined;
  }
}
