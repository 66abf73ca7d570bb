import { describe, expect, it } from 'vitest';
import { AddressSlots, addressKey } from '../../hal/address-slots.ts';

const conn = (name: string) => ({ name });

describe('AddressSlots: connections per address, room made by closing the oldest not authenticated', () => {
  it('admits up to the bound; then the oldest unauthenticated of that address makes room, others untouched', () => {
    const s = new AddressSlots<{ name: string }>(3);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(conn);
    const other = conn('other');
    for (const x of [a!, b!, c!]) expect(s.admit(x, '10.0.0.1')).toEqual({ refused: false, evict: undefined });
    expect(s.admit(other, '10.0.0.2')).toEqual({ refused: false, evict: undefined });
    s.authenticated(a!);
    // a authenticated: b is the oldest that has not.
    expect(s.admit(d!, '10.0.0.1')).toEqual({ refused: false, evict: b });
    // b no longer counts: its close changes nothing.
    s.release(b!);
    expect(s.admit(conn('e'), '10.0.0.1')).toEqual({ refused: false, evict: c });
  });

  it('refuses the newcomer only when every connection of the address has authenticated; a close frees a slot', () => {
    const s = new AddressSlots<{ name: string }>(2);
    const [a, b] = ['a', 'b'].map(conn);
    s.admit(a!, 'x');
    s.admit(b!, 'x');
    s.authenticated(a!);
    s.authenticated(b!);
    expect(s.admit(conn('c'), 'x')).toEqual({ refused: true });
    s.release(a!);
    s.release(a!); // twice: once counted
    expect(s.admit(conn('d'), 'x')).toEqual({ refused: false, evict: undefined });
    expect(s.admit(conn('e'), 'x')).toEqual({ refused: false, evict: { name: 'd' } });
  });

  it('a bound of 1: the one waiting connection gives way to each newcomer', () => {
    const s = new AddressSlots<{ name: string }>(1);
    const a = conn('a');
    s.admit(a, 'x');
    const b = conn('b');
    expect(s.admit(b, 'x')).toEqual({ refused: false, evict: a });
    s.authenticated(b);
    expect(s.admit(conn('c'), 'x')).toEqual({ refused: true });
  });

  it('refuses a bound that is not a positive integer, naming it', () => {
    expect(() => new AddressSlots(0)).toThrow(/connections per address: expected an integer >= 1, got 0/);
  });

  it('with every slot authenticated, the connection idle the longest (at least minIdleMs) gives way; busy ones never', () => {
    const s = new AddressSlots<{ name: string }>(3, { minIdleMs: 1000 });
    const [a, b, c] = ['a', 'b', 'c'].map(conn);
    for (const x of [a!, b!, c!]) {
      s.admit(x, 'x', 0);
      s.authenticated(x);
    }
    s.idle(b!, 100); // b idle first, then a; c has a request in progress
    s.idle(a!, 200);
    // Not idle long enough yet: refused.
    expect(s.admit(conn('early'), 'x', 1050)).toEqual({ refused: true });
    // b has been idle the longest.
    const d = conn('d');
    expect(s.admit(d, 'x', 1200)).toEqual({ refused: false, evict: b, idle: true });
    s.authenticated(d);
    // a got a request (busy), then d's slot is the newest: nobody idle, refused.
    s.busy(a!);
    expect(s.admit(conn('e'), 'x', 5000)).toEqual({ refused: true });
    // a idle again from 5000: it is a candidate only from 6000 on.
    s.idle(a!, 5000);
    expect(s.admit(conn('f'), 'x', 5999)).toEqual({ refused: true });
    expect(s.admit(conn('g'), 'x', 6000)).toEqual({ refused: false, evict: a, idle: true });
  });

  it('an unauthenticated connection gives way before any idle one; stillIdle can veto a candidate', () => {
    const s = new AddressSlots<{ name: string }>(3);
    const [a, b, c] = ['a', 'b', 'c'].map(conn);
    for (const x of [a!, b!, c!]) s.admit(x, 'x', 0);
    s.authenticated(a!);
    s.authenticated(b!);
    s.idle(a!, 0);
    s.idle(b!, 10);
    // c never authenticated: it goes first, however long a has been idle.
    const d = conn('d');
    expect(s.admit(d, 'x', 60_000)).toEqual({ refused: false, evict: c });
    s.authenticated(d);
    // The caller sees bytes of a next request on a: b goes instead.
    const asked: string[] = [];
    expect(s.admit(conn('e'), 'x', 60_000, (x) => (asked.push(x.name), x !== a))).toEqual({ refused: false, evict: b, idle: true });
    expect(asked).toEqual(['a', 'b']);
  });

  it('a young unauthenticated connection is spared while an idle one can give way; once older than minIdleMs it goes first', () => {
    const s = new AddressSlots<{ name: string }>(3, { minIdleMs: 1000 });
    const [a, b, c] = ['a', 'b', 'c'].map(conn);
    s.admit(a!, 'x', 0);
    s.admit(b!, 'x', 0);
    s.authenticated(a!);
    s.authenticated(b!);
    s.idle(a!, 0);
    s.idle(b!, 100);
    s.admit(c!, 'x', 5000); // c: a client whose request has not come in yet
    const d = conn('d');
    expect(s.admit(d, 'x', 5010)).toEqual({ refused: false, evict: a, idle: true });
    // c is 1000 ms old now: it goes before b.
    expect(s.admit(conn('e'), 'x', 6000)).toEqual({ refused: false, evict: c });
  });

  it('the bound in all: the longest-idle connection of any address gives way; none idle: refused', () => {
    const s = new AddressSlots<{ name: string }>(10, { total: 3, minIdleMs: 1000 });
    const [a, b, c] = ['a', 'b', 'c'].map(conn);
    s.admit(a!, '10.0.0.1', 0);
    s.admit(b!, '10.0.0.2', 0);
    s.admit(c!, '10.0.0.3', 0);
    for (const x of [a!, b!, c!]) s.authenticated(x);
    expect(s.full('10.0.0.4')).toBe(true);
    expect(s.admit(conn('d'), '10.0.0.4', 5000)).toEqual({ refused: true });
    s.idle(c!, 1000);
    s.idle(b!, 2000);
    expect(s.admit(conn('e'), '10.0.0.4', 5000)).toEqual({ refused: false, evict: c, idle: true });
    expect(s.size).toBe(3);
  });

  it('the bound in all: silent connections of the address holding the most give way, once minIdleMs old', () => {
    // Several addresses filling the bound with connections that never authenticate (any
    // local user can send from 127.0.0.2, 127.0.0.3, …; a LAN host can add addresses):
    // before, the newcomer was refused for as long as they were reopened.
    const s = new AddressSlots<{ name: string }>(4, { total: 6, minIdleMs: 1000 });
    const held: { name: string }[] = [];
    for (const addr of ['10.0.0.7', '10.0.0.8']) {
      for (let i = 0; i < 3; i++) {
        const c = conn(`${addr}#${i}`);
        held.push(c);
        expect(s.admit(c, addr, i)).toEqual({ refused: false, evict: undefined });
      }
    }
    const a = conn('client-a');
    // Too young to tell from a client whose request is on its way: nothing gives way yet.
    expect(s.admit(a, '10.0.0.1', 500)).toEqual({ refused: true });
    // 10.0.0.8 took one more of its own: the bound refuses it too; and 10.0.0.8 holds 3 still.
    expect(s.admit(conn('x'), '10.0.0.8', 600)).toEqual({ refused: true });
    // A second later the oldest silent one of the largest address goes (both hold 3: the first found).
    expect(s.admit(a, '10.0.0.1', 1500)).toEqual({ refused: false, evict: held[0] });
    s.authenticated(a);
    // Now 10.0.0.8 holds the most: its oldest goes for the next newcomer, and the client stays.
    expect(s.admit(conn('client-b'), '10.0.0.2', 1600)).toEqual({ refused: false, evict: held[3] });
    expect(s.size).toBe(6);
  });

  it('counts all of 127.0.0.0/8, and an IPv4 address in IPv6 form, as one address', () => {
    expect(addressKey('127.0.0.1')).toBe('127.0.0.0/8');
    expect(addressKey('127.4.5.6')).toBe('127.0.0.0/8');
    expect(addressKey('::ffff:127.0.0.9')).toBe('127.0.0.0/8');
    expect(addressKey('::ffff:10.0.0.5')).toBe('10.0.0.5');
    expect(addressKey('::1')).toBe('::1');
    expect(addressKey('fe80::1')).toBe('fe80::1');
    const s = new AddressSlots<{ name: string }>(2, { minIdleMs: 1000, key: addressKey });
    const [a, b] = ['a', 'b'].map(conn);
    s.admit(a!, '127.0.0.2', 0);
    s.admit(b!, '::ffff:127.0.0.3', 0);
    expect(s.full('127.0.0.1')).toBe(true);
    // The CLI from 127.0.0.1 closes the oldest silent one of the local user's, as for one address.
    expect(s.admit(conn('cli'), '127.0.0.1', 1000)).toEqual({ refused: false, evict: a });
  });

  it('quietFor: since admission before any request, NaN while one is in progress, since the last answer after', () => {
    const s = new AddressSlots<{ name: string }>(4);
    const a = conn('a');
    s.admit(a, '10.0.0.1', 100);
    expect(s.quietFor(a, 350)).toBe(250);
    s.busy(a);
    expect(s.quietFor(a, 400)).toBeNaN();
    s.idle(a, 500);
    expect(s.quietFor(a, 560)).toBe(60);
    s.release(a);
    expect(s.quietFor(a, 600)).toBeNaN();
  });

  it('refuses bounds that are not positive integers, naming them', () => {
    expect(() => new AddressSlots(4, { total: 0 })).toThrow(/connections in all: expected an integer >= 1, got 0/);
    expect(() => new AddressSlots(4, { minIdleMs: -1 })).toThrow(/minimum idle time: expected a number of ms >= 0, got -1/);
  });
});
