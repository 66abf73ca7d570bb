/**
 * Connections per client address, for a server that anybody on its network (or, on
 * loopback, any local user) can connect to before proving who they are: the embedded
 * MQTT broker (hal/mqtt/broker.ts) and the HTTP API (daemon/http/server.ts).
 *
 * At most `perAddress` connections of one address are held. At the bound a newcomer is
 * not refused: the oldest connection of that address that has not authenticated yet is
 * closed for it, and only when every one of them has is the newcomer refused. Refusing
 * the newcomer let whoever shares an address with a legitimate client (every local user
 * on 127.0.0.1; everything behind a NAT) hold all the slots with silent connections,
 * reopened as they were closed, and keep that client out for as long. Now such a holder
 * mostly closes its own older connections, a client that authenticates within its
 * first round trip gets in, and an authenticated connection is never closed for this.
 *
 * Bookkeeping only: the caller closes what `admit` says, and tells when a connection
 * authenticated and when it closed.
 */
interface Address<S> {
  /** Connections of the address counted now. */
  held: number;
  /** Those not authenticated yet, oldest first (a Set keeps insertion order). */
  waiting: Set<S>;
}

export type Admission<S> = { refused: true } | { refused: false; evict: S | undefined };

export class AddressSlots<S extends object> {
  private readonly byAddress = new Map<string, Address<S>>();
  private readonly counted = new WeakMap<S, { addr: string; a: Address<S> }>();

  constructor(readonly perAddress: number) {
    if (!Number.isInteger(perAddress) || perAddress < 1) throw new RangeError(`connections per address: expected an integer >= 1, got ${String(perAddress)}`);
  }

  /**
   * Counts `conn` for `addr`. At the bound, `evict` is the connection the caller closes
   * to make room (no longer counted); `refused`: every connection of the address has
   * authenticated, `conn` is not counted and the caller closes it.
   */
  admit(conn: S, addr: string): Admission<S> {
    let a = this.byAddress.get(addr);
    let evict: S | undefined;
    if (a !== undefined && a.held >= this.perAddress) {
      evict = a.waiting.values().next().value;
      if (evict === undefined) return { refused: true };
      this.release(evict);
    }
    a = this.byAddress.get(addr); // (releasing the last one of a bound of 1 removed it)
    if (a === undefined) this.byAddress.set(addr, (a = { held: 0, waiting: new Set() }));
    a.held++;
    a.waiting.add(conn);
    this.counted.set(conn, { addr, a });
    return { refused: false, evict };
  }

  /** `conn` authenticated: it is never closed to make room. */
  authenticated(conn: S): void {
    this.counted.get(conn)?.a.waiting.delete(conn);
  }

  /** `conn` closed (or was evicted): no longer counted. Once; later calls do nothing. */
  release(conn: S): void {
    const c = this.counted.get(conn);
    if (c === undefined) return;
    this.counted.delete(conn);
    c.a.waiting.delete(conn);
    if (--c.a.held <= 0) this.byAddress.delete(c.addr);
  }
}
