/**
 * SlotCoordinator (daemon/jobs/coordinator.ts) with a fake JobsHost: every reason of a
 * decision, without the simulator.
 */
import { describe, expect, it } from 'vitest';
import { SlotCoordinator, parseSlotKey, type Decision, type JobsHost, type Leadership } from '../../../daemon/jobs/coordinator.ts';
import type { ClientCallback, ClientResult } from '../../../daemon/runtime/results.ts';
import type { JobRecord } from '../../../src/kv/index.ts';

const SLOT = Date.UTC(2025, 0, 1, 0, 0, 10);
const KEY = `job:${new Date(SLOT).toISOString()}`;
const quiet = { debug: () => {}, info: () => {}, warn: () => {} };

class FakeHost implements JobsHost {
  lead: Leadership | undefined = { term: 3, token: 17 };
  rec: JobRecord | undefined;
  claims: Array<{ job: string; slot: number; lead: Leadership }> = [];
  /** The answer to the next claim; 'hold' keeps the callback in `pending`. */
  answer: ClientResult | 'hold' = { status: 200, index: 40 };
  pending: ClientCallback | undefined;
  activeLeadership(): Leadership | undefined {
    return this.lead;
  }
  claim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void {
    this.claims.push({ job, slot, lead });
    if (this.answer === 'hold') this.pending = cb;
    else cb(this.answer);
  }
  report(): void {
    throw new Error('not used');
  }
  record(): JobRecord | undefined {
    return this.rec;
  }
  nodeName(id: number): string {
    return `n${id}`;
  }
}

function decide(c: SlotCoordinator, key = KEY): Decision[] {
  const out: Decision[] = [];
  c.decide(key, (d) => out.push(d));
  return out;
}

describe('SlotCoordinator', () => {
  it('runs a slot when active and the claim is granted, with the leadership it claimed with', async () => {
    const h = new FakeHost();
    const c = new SlotCoordinator(h, quiet);
    expect(decide(c)).toEqual([{ run: true, lead: { term: 3, token: 17 } }]);
    expect(h.claims).toEqual([{ job: 'job', slot: SLOT, lead: { term: 3, token: 17 } }]);
    expect(c.stats.granted).toBe(1);
    // node-cron's interface: shouldRun keeps the grant until onComplete.
    await expect(c.shouldRun(KEY)).resolves.toBe(true);
    expect(c.grant(KEY)).toEqual({ term: 3, token: 17 });
    c.onComplete(KEY);
    expect(c.grant(KEY)).toBeUndefined();
  });

  it('not-active: no claim is proposed', async () => {
    const h = new FakeHost();
    h.lead = undefined;
    const c = new SlotCoordinator(h, quiet);
    expect(decide(c)).toMatchObject([{ run: false, reason: 'not-active' }]);
    expect(h.claims).toEqual([]);
    expect(c.stats.notActive).toBe(1);
    await expect(c.shouldRun(KEY)).resolves.toBe(false);
    expect(c.grant(KEY)).toBeUndefined();
  });

  it('claimed: the local record has this or a later slot; no claim is proposed', () => {
    const h = new FakeHost();
    const c = new SlotCoordinator(h, quiet);
    for (const slot of [SLOT, SLOT + 1000]) {
      h.rec = { name: 'job', claim: { slot, node: 2, term: 2, token: 9, index: 30 }, result: null };
      const [d] = decide(c);
      expect(d).toMatchObject({ run: false, reason: 'claimed' });
      expect((d as { detail: string }).detail).toContain('n2');
    }
    expect(h.claims).toEqual([]);
    // An earlier slot in the record does not stop the claim.
    h.rec = { name: 'job', claim: { slot: SLOT - 1000, node: 2, term: 2, token: 9, index: 30 }, result: null };
    expect(decide(c)).toMatchObject([{ run: true }]);
    expect(c.stats).toMatchObject({ claimedBefore: 2, granted: 1 });
  });

  it('a granted slot far ahead of this node\'s clock (a claimer whose clock ran ahead) is warned about once', () => {
    const h = new FakeHost();
    const warns: string[] = [];
    const c = new SlotCoordinator(h, { ...quiet, warn: (_f, m) => void warns.push(m) });
    h.rec = { name: 'job', claim: { slot: SLOT + 3_600_000, node: 2, term: 2, token: 9, index: 31 }, result: null };
    expect(decide(c)).toMatchObject([{ run: false, reason: 'claimed' }]);
    expect(decide(c, `job:${new Date(SLOT + 1000).toISOString()}`)).toMatchObject([{ run: false, reason: 'claimed' }]);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatch(/refused until 2025-01-01T01:00:10\.000Z: n2 claimed that slot with a clock 3600 s ahead/);
    // A slot just ahead (a node's cron lagging by a second) is no reason to warn.
    h.rec = { name: 'job', claim: { slot: SLOT + 1000, node: 2, term: 2, token: 9, index: 32 }, result: null };
    decide(c);
    expect(warns).toHaveLength(1);
  });

  it('after a reset: a slot at or before its floor is refused without a claim, the next one is claimed; the future-claim warning stops', () => {
    const h = new FakeHost();
    const warns: string[] = [];
    const c = new SlotCoordinator(h, { ...quiet, warn: (_f, m) => void warns.push(m) });
    const future = { slot: SLOT + 3_600_000, node: 2, term: 2, token: 9, index: 31 };
    h.rec = { name: 'job', claim: future, result: null };
    decide(c);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain('then `quorumd jobs reset job` withdraws that claim');
    h.rec = { name: 'job', claim: null, result: null, reset: { at: SLOT, floor: SLOT, node: 1, term: 3, index: 40, withdrawn: future } };
    const [d] = decide(c);
    expect(d).toEqual({ run: false, reason: 'claimed', detail: 'slot is at or before 2025-01-01T00:00:10.000Z, the floor of the job\'s reset by n1' });
    expect(h.claims).toEqual([]);
    expect(decide(c, `job:${new Date(SLOT + 1000).toISOString()}`)).toEqual([{ run: true, lead: { term: 3, token: 17 } }]);
    expect(h.claims).toEqual([{ job: 'job', slot: SLOT + 1000, lead: { term: 3, token: 17 } }]);
    expect(warns).toHaveLength(1);
  });

  it('409 from the log: claimed (not run)', () => {
    const h = new FakeHost();
    h.answer = { status: 409, holder: 'n1', error: 'slot not granted: already claimed' };
    const c = new SlotCoordinator(h, quiet);
    expect(decide(c)).toEqual([{ run: false, reason: 'claimed', detail: 'slot not granted: already claimed' }]);
    expect(c.stats.claimedBefore).toBe(1);
  });

  it('503: not granted (not run)', () => {
    const h = new FakeHost();
    h.answer = { status: 503, error: 'term changed' };
    const c = new SlotCoordinator(h, quiet);
    expect(decide(c)).toEqual([{ run: false, reason: 'not-granted', detail: 'term changed' }]);
    expect(c.stats.notGranted).toBe(1);
  });

  it('504: outcome unknown, not run (at most once)', async () => {
    const h = new FakeHost();
    h.answer = { status: 504, error: 'no outcome' };
    const c = new SlotCoordinator(h, quiet);
    expect(decide(c)).toEqual([{ run: false, reason: 'unknown', detail: 'no outcome' }]);
    expect(c.stats.unknown).toBe(1);
    await expect(c.shouldRun(KEY)).resolves.toBe(false);
  });

  it('lost activity between the claim and its grant: not run (stopped, or active again with another term or token)', () => {
    for (const after of [undefined, { term: 4, token: 17 }, { term: 3, token: 18 }]) {
      const h = new FakeHost();
      h.answer = 'hold';
      const c = new SlotCoordinator(h, quiet);
      const out = decide(c);
      expect(out).toEqual([]); // waits for the log
      h.lead = after;
      h.pending!({ status: 200, index: 41 });
      expect(out).toMatchObject([{ run: false, reason: 'lost-activity' }]);
      expect(c.stats.lostActivity).toBe(1);
    }
  });

  it('bad key: not run, nothing asked of the host', () => {
    const h = new FakeHost();
    const c = new SlotCoordinator(h, quiet);
    for (const key of ['job', ':2025-01-01T00:00:00.000Z', 'job:not a time', 'job:']) {
      expect(decide(c, key)).toMatchObject([{ run: false, reason: 'bad-key' }]);
    }
    expect(h.claims).toEqual([]);
    expect(parseSlotKey(KEY)).toEqual({ job: 'job', slot: SLOT });
  });
});
