import { decode as cborxDecode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import {
  decodeCommand,
  encodeCommand,
  KvError,
  KvStateMachine,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type ApplyResult,
  type Command,
} from '../../../src/kv/index.ts';
import { CborWriter } from '../../../src/kv/cbor.ts';
import { Rng } from '../../../src/rng.ts';

const te = new TextEncoder();
const td = new TextDecoder();
const bytes = (s: string) => te.encode(s);

function enc(cmd: Command): Uint8Array {
  const b = encodeCommand(cmd);
  if (b instanceof KvError) throw new Error(`test setup: ${b.message}`);
  return b;
}

/** A state machine plus a log index counter, like the Raft engine drives it. */
class Driver {
  sm = new KvStateMachine();
  index = 0;
  run(cmd: Command): ApplyResult {
    return this.sm.apply(++this.index, enc(cmd));
  }
  raw(data: Uint8Array): ApplyResult {
    return this.sm.apply(++this.index, data);
  }
}

describe('KV: put, get, delete, compare-and-set', () => {
  it('tracks create and modify indexes', () => {
    const d = new Driver();
    expect(d.run({ op: 'put', key: 'a', value: bytes('1') })).toEqual({ op: 'put', ok: true, index: 1 });
    expect(d.run({ op: 'put', key: 'b', value: bytes('x') })).toEqual({ op: 'put', ok: true, index: 2 });
    expect(d.run({ op: 'put', key: 'a', value: bytes('2') })).toEqual({ op: 'put', ok: true, index: 3 });
    const a = d.sm.get('a')!;
    expect(td.decode(a.value)).toBe('2');
    expect([a.createIndex, a.modIndex]).toEqual([1, 3]);
    expect(d.sm.get('zzz')).toBeUndefined();
    expect(d.sm.appliedIndex).toBe(3);
    expect(d.sm.keys()).toEqual(['a', 'b']);
  });

  it('cas=0 is create-only; cas=N needs modIndex N; failures report the current index', () => {
    const d = new Driver();
    expect(d.run({ op: 'put', key: 'k', value: bytes('v1'), cas: 0 })).toEqual({ op: 'put', ok: true, index: 1 });
    expect(d.run({ op: 'put', key: 'k', value: bytes('v2'), cas: 0 })).toEqual({ op: 'put', ok: false, index: 1 });
    expect(d.run({ op: 'put', key: 'k', value: bytes('v2'), cas: 7 })).toEqual({ op: 'put', ok: false, index: 1 });
    expect(d.run({ op: 'put', key: 'k', value: bytes('v2'), cas: 1 })).toEqual({ op: 'put', ok: true, index: 4 });
    expect(td.decode(d.sm.get('k')!.value)).toBe('v2');
    expect(d.sm.get('k')!.createIndex).toBe(1);
    // A cas against a missing key fails with index 0.
    expect(d.run({ op: 'put', key: 'other', value: bytes('x'), cas: 3 })).toEqual({ op: 'put', ok: false, index: 0 });
    expect(d.sm.get('other')).toBeUndefined();
  });

  it('delete, with and without cas; a re-created key gets a new createIndex', () => {
    const d = new Driver();
    d.run({ op: 'put', key: 'k', value: bytes('v') }); // 1
    expect(d.run({ op: 'del', key: 'k', cas: 9 })).toEqual({ op: 'del', ok: false, index: 1 });
    expect(d.sm.get('k')).toBeDefined();
    expect(d.run({ op: 'del', key: 'k', cas: 1 })).toEqual({ op: 'del', ok: true, index: 3 });
    expect(d.sm.get('k')).toBeUndefined();
    expect(d.run({ op: 'del', key: 'k' })).toEqual({ op: 'del', ok: true, index: 4 });
    expect(d.run({ op: 'put', key: 'k', value: bytes('w'), cas: 0 })).toEqual({ op: 'put', ok: true, index: 5 });
    expect(d.sm.get('k')!.createIndex).toBe(5);
  });
});

describe('KV: input limits give typed errors', () => {
  it('key of exactly 256 UTF-8 bytes is fine, 257 is not; multi-byte characters count as bytes', () => {
    expect(encodeCommand({ op: 'put', key: 'k'.repeat(MAX_KEY_BYTES), value: bytes('') })).toBeInstanceOf(Uint8Array);
    const long = encodeCommand({ op: 'put', key: 'k'.repeat(MAX_KEY_BYTES + 1), value: bytes('') });
    expect(long).toBeInstanceOf(KvError);
    expect((long as KvError).code).toBe('key-too-long');
    expect((long as KvError).message).toMatch(/key: 257 UTF-8 bytes, at most 256/);
    // 86 × 'é' (2 bytes each) = 172 bytes: fine. 129 × 'é' = 258 bytes: too long.
    expect(encodeCommand({ op: 'put', key: 'é'.repeat(86), value: bytes('') })).toBeInstanceOf(Uint8Array);
    expect((encodeCommand({ op: 'put', key: 'é'.repeat(129), value: bytes('') }) as KvError).code).toBe('key-too-long');
  });

  it('value limit, empty key, lone surrogate, bad cas, bad ttl', () => {
    expect(encodeCommand({ op: 'put', key: 'k', value: new Uint8Array(MAX_VALUE_BYTES) })).toBeInstanceOf(Uint8Array);
    const big = encodeCommand({ op: 'put', key: 'k', value: new Uint8Array(MAX_VALUE_BYTES + 1) }) as KvError;
    expect(big.code).toBe('value-too-large');
    expect(big.httpStatus).toBe(413);
    const cases: Array<[unknown, string, string]> = [
      [{ op: 'put', key: '', value: bytes('') }, 'bad-key', 'key'],
      [{ op: 'put', key: 'a\uD800b', value: bytes('') }, 'bad-key', 'key'],
      [{ op: 'put', key: 5, value: bytes('') }, 'bad-key', 'key'],
      [{ op: 'put', key: 'k', value: 'text' }, 'bad-value', 'value'],
      [{ op: 'put', key: 'k', value: bytes(''), cas: -1 }, 'bad-cas', 'cas'],
      [{ op: 'del', key: 'k', cas: 1.5 }, 'bad-cas', 'cas'],
      [{ op: 'lock.acquire', name: 'l', owner: 'o', ttlMs: 0, now: 0 }, 'bad-ttl', 'ttlMs'],
      [{ op: 'lock.acquire', name: 'l', owner: '', ttlMs: 10, now: 0 }, 'bad-owner', 'owner'],
      [{ op: 'lock.acquire', name: 'l', owner: 'o', ttlMs: 10, now: -5 }, 'bad-now', 'now'],
      [{ op: 'lock.renew', name: 'l', token: 0, now: 0 }, 'bad-token', 'token'],
      [{ op: 'nope' }, 'bad-command', 'op'],
      [null, 'bad-command', 'command'],
    ];
    for (const [cmd, code, field] of cases) {
      const e = encodeCommand(cmd as Command);
      expect(e, JSON.stringify(cmd)).toBeInstanceOf(KvError);
      expect([(e as KvError).code, (e as KvError).field]).toEqual([code, field]);
      expect((e as KvError).httpStatus).toBe(400);
    }
  });
});

describe('KV: commands from the log', () => {
  it('encoding is compact ordinary CBOR that cbor-x reads', () => {
    const b = enc({ op: 'put', key: 'k', value: bytes('hello'), cas: 3 });
    expect(b.length).toBe(1 + 1 + 2 + 6 + 1);
    const v = cborxDecode(b) as unknown[];
    expect(v[0]).toBe(1);
    expect(v[1]).toBe('k');
    expect(td.decode(v[2] as Uint8Array)).toBe('hello');
    expect(v[3]).toBe(3);
    const all: Command[] = [
      { op: 'put', key: 'k', value: bytes('v') },
      { op: 'del', key: 'k', cas: 0 },
      { op: 'lock.acquire', name: 'n', owner: 'me', ttlMs: 15000, now: 123456789 },
      { op: 'lock.renew', name: 'n', token: 70000, now: 2 ** 40 },
      { op: 'lock.release', name: 'n', token: 4 },
    ];
    for (const c of all) expect(decodeCommand(enc(c))).toEqual(c);
  });

  it('undecodable entries become counted no-ops with an error result, never a throw', () => {
    const d = new Driver();
    d.run({ op: 'put', key: 'k', value: bytes('v') });
    const before = d.sm.snapshot();
    const garbage: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array([]), /truncated/],
      [new Uint8Array([0x9a, 0x00, 0x10, 0x00, 0x00]), /claims 1048576 items/],
      [new Uint8Array([0x5a, 0xff, 0xff, 0xff, 0xff]), /truncated byte string/],
      [new Uint8Array([0x82, 0x02, 0x61, 0x6b, 0x00]), /trailing/],
      [new Uint8Array([0x82, 0x09, 0x61, 0x6b]), /unknown op code 9/],
      [new Uint8Array([0x81, 0x01]), /put command: expected 3..4 elements/],
      [new Uint8Array([0x83, 0x01, 0x41, 0x6b, 0x40]), /key: expected a string/],
      [new Uint8Array([0x82, 0x02, 0x62, 0xc3, 0x28]), /invalid UTF-8/],
      [new Uint8Array([0x82, 0x18, 0x02, 0x61, 0x6b]), /non-shortest/],
      [new Uint8Array([0x82, 0x02, 0xc1, 0x00]), /unsupported major type 6/],
      [new Uint8Array([0xa1, 0x61, 0x61, 0x01]), /unsupported major type 5/],
      [new Uint8Array([0x82, 0x02, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0]), /unsupported simple\/float/],
      [new Uint8Array(200_000), /at most/],
    ];
    for (const [g, why] of garbage) {
      const r = d.raw(g);
      expect(r.op).toBe('error');
      if (r.op === 'error') {
        expect(r.error.code === 'bad-command' || r.error.field === 'key').toBe(true);
        expect(r.error.message).toMatch(why);
      }
    }
    expect(d.sm.badCommands).toBe(garbage.length);
    expect(d.sm.appliedIndex).toBe(1 + garbage.length);
    expect(td.decode(d.sm.get('k')!.value)).toBe('v');
    expect(d.sm.snapshot()).not.toEqual(before); // appliedIndex and the counter moved
  });

  it('strict: an undecodable entry (a newer build\'s command) changes nothing, not even the applied index; the next good entry then applies at that index', () => {
    const d = new Driver();
    d.run({ op: 'put', key: 'k', value: bytes('v') });
    const before = d.sm.snapshot();
    // [99, "x"]: an op code this build does not know; [1, "k", h'76', 0, 7]: a put with one element more than it knows.
    for (const newer of [new Uint8Array([0x82, 0x18, 0x63, 0x61, 0x78]), new Uint8Array([0x85, 0x01, 0x61, 0x6b, 0x41, 0x76, 0x00, 0x07])]) {
      const r = d.sm.apply(2, newer, true);
      expect(r.op === 'error' && r.error.code).toBe('bad-command');
      expect(d.sm.appliedIndex).toBe(1);
      expect(d.sm.badCommands).toBe(0);
      expect(d.sm.snapshot()).toEqual(before);
    }
    expect(d.sm.apply(2, enc({ op: 'put', key: 'k', value: bytes('w') }), true)).toEqual({ op: 'put', ok: true, index: 2 });
    expect(td.decode(d.sm.get('k')!.value)).toBe('w');
  });

  it('random byte mutations never throw and replicas stay identical (seeded fuzz)', () => {
    const rng = new Rng('kv-fuzz');
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    const seeds: Command[] = [
      { op: 'put', key: 'key', value: bytes('value'), cas: 2 },
      { op: 'lock.acquire', name: 'n', owner: 'o', ttlMs: 100, now: 1000 },
      { op: 'lock.renew', name: 'n', token: 3, now: 1050 },
      { op: 'del', key: 'key' },
    ];
    for (let i = 1; i <= 3000; i++) {
      const src = enc(rng.pick(seeds));
      const m = src.slice(0, rng.int(0, src.length + 2));
      for (let j = rng.int(0, 3); j > 0 && m.length > 0; j--) m[rng.int(0, m.length - 1)] = rng.u32() & 0xff;
      const ra = a.apply(i, m);
      const rb = b.apply(i, m.slice());
      expect(ra).toEqual(rb);
    }
    expect(a.snapshot()).toEqual(b.snapshot());
    expect(a.badCommands).toBeGreaterThan(100);
    expect(a.badCommands).toBeLessThan(3000);
  });

  it('refuses an index that does not follow appliedIndex, without changing state', () => {
    const d = new Driver();
    d.run({ op: 'put', key: 'k', value: bytes('v') });
    const snap = d.sm.snapshot();
    for (const idx of [1, 0, -1, 1.5, Number.NaN]) {
      const r = d.sm.apply(idx, enc({ op: 'del', key: 'k' }));
      expect(r.op === 'error' && r.error.code).toBe('apply-order');
    }
    expect(d.sm.snapshot()).toEqual(snap);
    expect(d.sm.applyNoop(5)).toBeNull();
    expect(d.sm.appliedIndex).toBe(5);
    expect(d.sm.applyNoop(5)?.code).toBe('apply-order');
    // Gaps are fine: the next command may come at any higher index.
    expect(d.sm.apply(9, enc({ op: 'del', key: 'k' }))).toEqual({ op: 'del', ok: true, index: 9 });
  });
});

describe('KV: locks with TTL and fencing tokens', () => {
  it('grants, blocks, expires, renews, releases; tokens are grant indexes', () => {
    const d = new Driver();
    d.run({ op: 'put', key: 'pad', value: bytes('') }); // 1
    expect(d.run({ op: 'lock.acquire', name: 'L', owner: 'A', ttlMs: 100, now: 1000 })).toEqual({
      op: 'lock.acquire', ok: true, token: 2, ttlMs: 100, expiresAt: 1100,
    });
    expect(d.run({ op: 'lock.acquire', name: 'L', owner: 'B', ttlMs: 100, now: 1050 })).toEqual({
      op: 'lock.acquire', ok: false, holder: 'A', token: 2, expiresAt: 1100,
    });
    expect(d.run({ op: 'lock.renew', name: 'L', token: 2, now: 1090 })).toEqual({ op: 'lock.renew', ok: true, token: 2, expiresAt: 1190, ttlMs: 100 });
    expect(d.run({ op: 'lock.renew', name: 'L', token: 99, now: 1095 })).toEqual({ op: 'lock.renew', ok: false, reason: 'wrong-token' });
    expect(d.sm.getLock('L')?.owner).toBe('A');
    expect(d.sm.getLock('L', 1190)).toBeUndefined(); // expired by then
    // B at exactly expiresAt: the lease has run out.
    expect(d.run({ op: 'lock.acquire', name: 'L', owner: 'B', ttlMs: 50, now: 1190 })).toEqual({
      op: 'lock.acquire', ok: true, token: 6, ttlMs: 50, expiresAt: 1240,
    });
    expect(d.run({ op: 'lock.renew', name: 'L', token: 2, now: 1200 })).toEqual({ op: 'lock.renew', ok: false, reason: 'wrong-token' });
    expect(d.sm.getLock('L')?.token).toBe(6);
    expect(d.run({ op: 'lock.release', name: 'L', token: 2 })).toEqual({ op: 'lock.release', ok: false });
    // B retries its acquire (outcome was unknown): same token, refreshed lease.
    expect(d.run({ op: 'lock.acquire', name: 'L', owner: 'B', ttlMs: 60, now: 1210 })).toEqual({
      op: 'lock.acquire', ok: true, token: 6, ttlMs: 60, expiresAt: 1270,
    });
    expect(d.run({ op: 'lock.renew', name: 'L', token: 6, now: 1300 })).toEqual({ op: 'lock.renew', ok: false, reason: 'expired' });
    expect(d.run({ op: 'lock.release', name: 'L', token: 6 })).toEqual({ op: 'lock.release', ok: true });
    expect(d.run({ op: 'lock.renew', name: 'L', token: 6, now: 1300 })).toEqual({ op: 'lock.renew', ok: false, reason: 'not-held' });
    expect(d.sm.getLock('L')).toBeUndefined();
  });

  it('time never runs backwards: a lagging stamp is evaluated at the state machine clock', () => {
    const d = new Driver();
    d.run({ op: 'lock.acquire', name: 'L', owner: 'A', ttlMs: 100, now: 5000 });
    // A new leader stamps an older time; the lock is still judged at 5000 → expiresAt 5100.
    expect(d.run({ op: 'lock.acquire', name: 'M', owner: 'A', ttlMs: 100, now: 10 })).toMatchObject({ ok: true, expiresAt: 5100 });
    expect(d.sm.clockMs).toBe(5000);
  });

  it('fencing tokens only grow over a random workload, and never repeat', () => {
    const rng = new Rng('fencing');
    const d = new Driver();
    let now = 0;
    let last = 0;
    const held = new Map<string, number>();
    let grants = 0;
    for (let i = 0; i < 2000; i++) {
      now += rng.int(0, 40);
      const name = rng.pick(['a', 'b', 'c']);
      const kind = rng.int(0, 3);
      if (kind === 0) d.run({ op: 'put', key: name, value: bytes(String(i)) });
      else if (kind === 1) {
        const r = d.run({ op: 'lock.acquire', name, owner: rng.pick(['x', 'y', 'z']), ttlMs: rng.int(1, 120), now });
        if (r.op === 'lock.acquire' && r.ok && r.token !== held.get(name)) {
          expect(r.token).toBeGreaterThan(last);
          last = r.token;
          held.set(name, r.token);
          grants++;
        }
      } else if (kind === 2) d.run({ op: 'lock.renew', name, token: held.get(name) ?? 1, now });
      else d.run({ op: 'lock.release', name, token: held.get(name) ?? 1 });
    }
    expect(grants).toBeGreaterThan(100);
  });
});

describe('KV: snapshots', () => {
  function randomWorkload(seed: string, n: number): Driver {
    const rng = new Rng(seed);
    const d = new Driver();
    let now = 0;
    for (let i = 0; i < n; i++) {
      const key = `k${rng.int(0, 30)}${rng.chance(0.1) ? 'é' : ''}`;
      now += rng.int(0, 10);
      const r = rng.int(0, 9);
      if (r < 5) d.run({ op: 'put', key, value: bytes(`v${i}`.repeat(rng.int(0, 4))), ...(rng.chance(0.3) ? { cas: rng.int(0, d.index) } : {}) });
      else if (r < 7) d.run({ op: 'del', key, ...(rng.chance(0.3) ? { cas: d.sm.get(key)?.modIndex ?? 0 } : {}) });
      else if (r < 8) d.run({ op: 'lock.acquire', name: key, owner: rng.pick(['p', 'q']), ttlMs: rng.int(1, 50), now });
      else if (r < 9) d.run({ op: 'lock.renew', name: key, token: d.sm.getLock(key)?.token ?? 1, now });
      else d.raw(new Uint8Array([0xff, rng.int(0, 255)]));
    }
    return d;
  }

  it('snapshot → restore gives the same answers, the same bytes, and the same future', () => {
    const d = randomWorkload('snap', 600);
    const bytes1 = d.sm.snapshot();
    const r = KvStateMachine.restore(bytes1);
    if (r instanceof KvError) throw r;
    expect(r.snapshot()).toEqual(bytes1);
    expect(r.appliedIndex).toBe(d.sm.appliedIndex);
    expect(r.clockMs).toBe(d.sm.clockMs);
    expect(r.badCommands).toBe(d.sm.badCommands);
    expect(r.keys()).toEqual(d.sm.keys());
    expect(r.size).toBeGreaterThan(5);
    for (let i = 0; i <= 30; i++) {
      for (const k of [`k${i}`, `k${i}é`]) {
        expect(r.get(k)).toEqual(d.sm.get(k));
        expect(r.getLock(k)).toEqual(d.sm.getLock(k));
      }
    }
    // Both continue identically.
    let idx = d.sm.appliedIndex;
    for (let i = 1; i <= 200; i++) {
      idx++;
      const key = `k${i % 31}`;
      const cmd = enc(i % 3 === 0 ? { op: 'put', key, value: bytes(String(i)), cas: r.get(key)?.modIndex ?? 0 } : { op: 'del', key, cas: i });
      expect(r.apply(idx, cmd)).toEqual(d.sm.apply(idx, cmd));
    }
    expect(r.snapshot()).toEqual(d.sm.snapshot());
  });

  it('the same state gives the same bytes whatever the insertion order', () => {
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    // Same final state (same indexes per key) reached with keys inserted in opposite orders.
    a.apply(1, enc({ op: 'put', key: 'x', value: bytes('1') }));
    a.apply(2, enc({ op: 'put', key: 'y', value: bytes('2') }));
    a.apply(3, enc({ op: 'put', key: 'x', value: bytes('1') }));
    b.apply(1, enc({ op: 'put', key: 'y', value: bytes('0') }));
    b.apply(2, enc({ op: 'put', key: 'y', value: bytes('2') }));
    b.apply(3, enc({ op: 'put', key: 'x', value: bytes('1') }));
    // a: x(create 1, mod 3), y(2,2); b: y(1,2), x(3,3) — differ in createIndex, so not equal…
    expect(a.snapshot()).not.toEqual(b.snapshot());
    // …but rebuilt through restore with rows in a different Map order, bytes match.
    const snap = a.snapshot();
    const c = KvStateMachine.restore(snap) as KvStateMachine;
    c.apply(4, enc({ op: 'del', key: 'x' }));
    a.apply(4, enc({ op: 'del', key: 'x' }));
    c.apply(5, enc({ op: 'put', key: 'x', value: bytes('9') }));
    a.apply(5, enc({ op: 'put', key: 'x', value: bytes('9') }));
    expect([...c.keys()]).toEqual(['x', 'y']);
    expect(c.snapshot()).toEqual(a.snapshot());
    // Key rows come out sorted although 'y' was inserted into c's map before 'x'.
    const rows = (cborxDecode(c.snapshot()) as unknown[])[5] as unknown[][];
    expect(rows.map((r) => r[0])).toEqual(['x', 'y']);
  });

  it('restore rejects damaged or inconsistent snapshots with a named error, never a throw', () => {
    const d = randomWorkload('damage', 150);
    const good = d.sm.snapshot();
    const rng = new Rng('damage-fuzz');
    let rejected = 0;
    for (let i = 0; i < 1500; i++) {
      const m = good.slice(0, rng.chance(0.3) ? rng.int(0, good.length) : good.length);
      for (let j = rng.int(1, 3); j > 0 && m.length > 0; j--) m[rng.int(0, m.length - 1)] = rng.u32() & 0xff;
      const r = KvStateMachine.restore(m);
      if (r instanceof KvError) {
        expect(r.code).toBe('bad-snapshot');
        expect(r.message).toMatch(/^snapshot: /);
        rejected++;
      } else {
        // Whatever was accepted is self-consistent: it re-encodes to the same bytes.
        expect(r.snapshot()).toEqual(m);
      }
    }
    expect(rejected).toBeGreaterThan(1000);
    // Hand-made inconsistencies, written with the same CBOR writer.
    const snap = (rows: Array<[string, number, number]>, applied = 10, locks: Array<[string, string, number]> = []) => {
      const w = new CborWriter();
      w.array(7).text('quorumd-kv').uint(1).uint(applied).uint(0).uint(0).array(rows.length);
      for (const [k, c, m] of rows) w.array(4).text(k).bytes(bytes('v')).uint(c).uint(m);
      w.array(locks.length);
      for (const [n, o, t] of locks) w.array(5).text(n).text(o).uint(t).uint(10).uint(100);
      return w.finish();
    };
    expect(KvStateMachine.restore(snap([['a', 1, 2], ['b', 3, 3]]))).toBeInstanceOf(KvStateMachine);
    expect((KvStateMachine.restore(snap([['b', 1, 2], ['a', 3, 3]])) as KvError).message).toMatch(/row 1: keys must be sorted and unique/);
    expect((KvStateMachine.restore(snap([['a', 1, 2], ['a', 3, 3]])) as KvError).message).toMatch(/sorted and unique/);
    expect((KvStateMachine.restore(snap([['a', 3, 2]])) as KvError).message).toMatch(/createIndex ≤ modIndex/);
    expect((KvStateMachine.restore(snap([['a', 1, 11]])) as KvError).message).toMatch(/modIndex ≤ appliedIndex/);
    expect((KvStateMachine.restore(snap([['', 1, 1]])) as KvError).message).toMatch(/non-empty/);
    expect((KvStateMachine.restore(snap([], 10, [['L', 'o', 11]])) as KvError).message).toMatch(/token ≤ appliedIndex/);
    expect((KvStateMachine.restore(snap([], 10, [['L', 'o', 5], ['L', 'p', 6]])) as KvError).message).toMatch(/sorted and unique/);
    const v2 = snap([]);
    v2[12] = 2; // version field, right after the 1-byte array head and the 11-byte magic
    expect((KvStateMachine.restore(v2) as KvError).message).toMatch(/unsupported version 2/);
    expect((KvStateMachine.restore(new Uint8Array([0x80])) as KvError).message).toMatch(/7-element array/);
  });

  it('a snapshot of a newer version (a newer leader\'s, or a data directory a newer build wrote) is refused as such, whatever its length', () => {
    for (const elements of [7, 9, 10]) {
      const w = new CborWriter();
      w.array(elements).text('quorumd-kv').uint(5).uint(10).uint(0).uint(0).array(0).array(0);
      for (let i = 7; i < elements; i++) w.array(0);
      const r = KvStateMachine.restore(w.finish()) as KvError;
      expect(r.code).toBe('bad-snapshot');
      expect(r.message).toBe('snapshot: version 5 was written by a newer quorumd (this build reads 1 to 4): upgrade this node to the version the other members run');
    }
  });
});
