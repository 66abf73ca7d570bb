import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.ts';
import { Flash } from '../../firmware-sim/flash.ts';
import { Scheduler, SimContext, Trace } from '../../firmware-sim/scheduler.ts';
import { World } from '../../firmware-sim/world.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

function mk(seed = 1, opts = {}) {
  const sched = new Scheduler();
  const ctx = new SimContext(sched, new Trace());
  const flash = new Flash(ctx, new Rng(seed), 'n1', opts);
  /** Runs the scheduler until idle (bounded). */
  const settle = () => sched.run(sched.now + 10_000_000);
  return { sched, flash, settle };
}

describe('Flash: power-loss semantics', () => {
  it('synced data survives a power cut; unsynced data is lost', () => {
    const { flash, settle } = mk();
    flash.write('a', enc('durable'));
    const results: Array<Error | null> = [];
    flash.sync('a', (e) => results.push(e));
    flash.syncDir((e) => results.push(e));
    settle();
    expect(results).toEqual([null, null]);
    flash.write('b', enc('volatile')); // new file, never synced
    flash.truncate('a', 3); // unsynced change to a durable file
    expect(dec(flash.read('a'))).toBe('dur');
    flash.powerLoss();
    expect(dec(flash.read('a'))).toBe('durable');
    expect(flash.read('b')).toBeUndefined();
    expect(flash.list()).toEqual(['a']);
  });

  it('sync makes durable the content as of the call, after the fsync latency, serialized', () => {
    const { sched, flash } = mk(3, { fsyncMinMs: 4, fsyncMaxMs: 4 });
    flash.write('log', enc(''));
    flash.syncDir(() => {});
    const times: number[] = [];
    flash.append('log', enc('one;'));
    flash.sync('log', () => times.push(sched.now));
    flash.append('log', enc('two;')); // after the call: not covered by that sync
    sched.run(7_000);
    expect(times).toEqual([]); // first slot (dir sync) ends at 4 ms, this one at 8 ms
    sched.run(8_000);
    expect(times).toEqual([8_000]);
    expect(dec(flash.durableView().get('log'))).toBe('one;');
  });

  it('a power cut before the fsync completes makes nothing durable and never calls back', () => {
    const { sched, flash, settle } = mk(4, { fsyncMinMs: 5, fsyncMaxMs: 5 });
    flash.write('f', enc('x'));
    flash.syncDir(() => {});
    settle();
    flash.write('f', enc('new'));
    let called = false;
    flash.sync('f', () => (called = true));
    sched.run(sched.now + 1000);
    flash.powerLoss();
    settle();
    expect(called).toBe(false);
    expect(flash.durableView().get('f')?.length).toBe(0); // created by syncDir, content never synced
  });

  it('a rename is not durable without syncDir; with it, it is', () => {
    const { flash, settle } = mk();
    flash.write('hs.tmp', enc('state-1'));
    flash.sync('hs.tmp', () => {});
    flash.syncDir(() => {});
    settle();
    flash.rename('hs.tmp', 'hs');
    expect(flash.list()).toEqual(['hs']);
    flash.powerLoss();
    expect(flash.list()).toEqual(['hs.tmp']);
    expect(dec(flash.read('hs.tmp'))).toBe('state-1');
    flash.rename('hs.tmp', 'hs');
    flash.syncDir(() => {});
    settle();
    flash.powerLoss();
    expect(flash.list()).toEqual(['hs']);
    expect(dec(flash.read('hs'))).toBe('state-1');
  });

  it('an unsynced remove comes back after a power cut', () => {
    const { flash, settle } = mk();
    flash.write('x', enc('keep'));
    flash.sync('x', () => {});
    flash.syncDir(() => {});
    settle();
    flash.remove('x');
    expect(flash.read('x')).toBeUndefined();
    flash.powerLoss();
    expect(dec(flash.read('x'))).toBe('keep');
  });

  it('tears the last unsynced append at a random byte: over many seeds both torn and complete, never foreign bytes', () => {
    const durable = enc('HEADER|');
    const last = enc('0123456789abcdefghijklmnopqrstuvwxyz');
    const kept = new Set<number>();
    for (let seed = 0; seed < 300; seed++) {
      const { flash, settle } = mk(seed);
      flash.append('wal', durable);
      flash.sync('wal', () => {});
      flash.syncDir(() => {});
      settle();
      flash.append('wal', last);
      flash.powerLoss();
      const got = flash.read('wal')!;
      expect(got.length).toBeGreaterThanOrEqual(durable.length);
      expect(got.length).toBeLessThanOrEqual(durable.length + last.length);
      // every byte is one that was written at that position
      const expected = new Uint8Array([...durable, ...last]);
      expect(Buffer.from(got).equals(Buffer.from(expected.subarray(0, got.length)))).toBe(true);
      kept.add(got.length - durable.length);
      expect(flash.stats.tornWrites).toBe(got.length - durable.length > 0 && got.length - durable.length < last.length ? 1 : 0);
    }
    expect(kept.has(last.length)).toBe(true); // complete
    expect(kept.has(0)).toBe(true); // lost
    expect([...kept].some((k) => k > 0 && k < last.length)).toBe(true); // torn prefix
  });

  it('only the last write tears: an earlier unsynced append is lost with it (no gaps)', () => {
    for (let seed = 0; seed < 50; seed++) {
      const { flash, settle } = mk(seed);
      flash.append('wal', enc('A'));
      flash.sync('wal', () => {});
      flash.syncDir(() => {});
      settle();
      flash.append('wal', enc('BBBB'));
      flash.append('wal', enc('CCCC')); // second unsynced change: not eligible to tear
      flash.powerLoss();
      expect(dec(flash.read('wal'))).toBe('A');
    }
  });

  it('a torn whole-file write leaves the old content or a prefix of the new one', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const { flash, settle } = mk(seed);
      flash.write('f', enc('old-content'));
      flash.sync('f', () => {});
      flash.syncDir(() => {});
      settle();
      flash.write('f', enc('NEW'));
      flash.powerLoss();
      const s = dec(flash.read('f'))!;
      expect(['old-content', 'N', 'NE', 'NEW']).toContain(s);
      seen.add(s);
    }
    expect(seen.size).toBe(4);
  });

  it('injected disk errors fail the fsync and make nothing durable; slow fsync takes longer', () => {
    const { sched, flash, settle } = mk(5, { fsyncMinMs: 2, fsyncMaxMs: 2 });
    flash.write('f', enc('v1'));
    flash.faults.diskError = true;
    let err: Error | null = null;
    flash.sync('f', (e) => (err = e));
    settle();
    expect(String(err)).toMatch(/EIO/);
    expect(flash.durableView().has('f')).toBe(false);
    flash.faults.diskError = false;
    flash.faults.slowFactor = 50;
    const t0 = sched.now;
    let t1 = -1;
    flash.sync('f', () => (t1 = sched.now));
    settle();
    expect(t1 - t0).toBe(100_000);
    expect(flash.stats.fsyncs).toBe(2);
    expect(flash.stats.syncErrors).toBe(1);
    expect(flash.stats.bytesWritten).toBe(2);
  });

  it('bad input gets clear errors, not crashes', () => {
    const { flash, settle } = mk();
    expect(() => flash.write('', enc('x'))).toThrow(/file name/);
    expect(() => flash.write('a/b', enc('x'))).toThrow(/file name/);
    expect(() => flash.write('a', 'x' as unknown as Uint8Array)).toThrow(/Uint8Array/);
    expect(() => flash.truncate('missing', 0)).toThrow(/ENOENT/);
    flash.write('a', enc('abc'));
    expect(() => flash.truncate('a', 4)).toThrow(/\[0, 3\]/);
    expect(() => flash.rename('nope', 'b')).toThrow(/ENOENT/);
    expect(() => flash.remove('nope')).toThrow(/ENOENT/);
    let err: Error | null = null;
    flash.sync('nope', (e) => (err = e));
    settle();
    expect(String(err)).toMatch(/ENOENT/);
  });
});

describe('Flash on a board', () => {
  it('a process crash keeps unsynced data (page cache); a power cut loses it', () => {
    const w = new World({ seed: 1, board: { bootDelayMs: 100, restartDelayMs: 50 } });
    const b = w.addBoard(1);
    w.run(200);
    const hal = b.hal!;
    hal.storage.write('k', enc('unsynced'));
    let syncCb = 0;
    hal.storage.sync('k', () => syncCb++); // in flight when the process dies
    expect(b.crashProcess()).toBe(true);
    w.run(100);
    expect(syncCb).toBe(0); // the dead process is never called back
    const hal2 = b.hal!;
    expect(hal2.incarnation).toBe(hal.incarnation + 1);
    expect(dec(hal2.storage.read('k'))).toBe('unsynced');
    // the kernel completed the fsync, but the directory entry was never synced
    expect(b.flash.durableView().has('k')).toBe(false);
    b.setMains(false);
    w.run(10);
    b.setMains(true);
    w.run(200);
    expect(b.hal!.storage.read('k')).toBeUndefined();
    // a stale HAL does nothing and is counted
    hal.storage.write('zombie', enc('x'));
    expect(b.flash.list()).not.toContain('zombie');
    expect(b.stats.staleCalls).toBe(1);
  });
});
