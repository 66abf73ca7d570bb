import { describe, expect, it } from 'vitest';
import { AddressSlots } from '../../hal/address-slots.ts';

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
});
