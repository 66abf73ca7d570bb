/**
 * Each Byzantine behaviour alone, at the primary of view 0 and at a backup, with some
 * message loss: honest replicas never disagree (checked after every step), every
 * request of an honest origin executes once the network is calm, and the liar's
 * traffic shows up where it should (refused signatures, refused NEW-VIEWs, ...).
 * Then two liars among seven, as the primaries of views 0 and 1.
 */
import { describe, expect, it } from 'vitest';
import { BYZ_KINDS, Cluster, type ByzKind } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

function run(n: number, byzantine: Record<number, ByzKind[]>, seed: number): Cluster {
  const c = new Cluster({ seed, n, options: SWEEP_OPTIONS, byzantine, net: { drop: 0.03, maxDelay: 3 } });
  const members = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = 0; i < 24; i++) {
    c.submit(members[i % n]!, `set k${i % 4} v${i}`);
    c.run(8);
  }
  c.stabilize(6000);
  return c;
}

const honestDrops = (c: Cluster) => {
  const sum: Record<string, number> = {};
  for (const r of c.honest()) for (const [k, v] of Object.entries(r.e.status().dropped)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
};

describe('one Byzantine replica among four', () => {
  for (const kind of BYZ_KINDS) {
    for (const [where, id] of [['primary', 1], ['backup', 3]] as const) {
      it(`${kind}, as the ${where}`, () => {
        const c = run(4, { [id]: [kind] }, 100 + BYZ_KINDS.indexOf(kind) * 2 + id);
        expect(c.inv.violations).toEqual([]);
        expect(c.inv.accepted).toBeGreaterThan(10);
        const d = honestDrops(c);
        const views = Math.max(...c.honest().map((r) => r.e.currentView));
        if (kind === 'silent' && where === 'primary') expect(views).toBeGreaterThan(0);
        if (kind === 'forge') expect(d.badSignature).toBeGreaterThan(0);
        if (kind === 'garbage') expect(d.malformed).toBeGreaterThan(0);
        if (kind === 'equivocate' && where === 'primary') expect((d.conflict ?? 0) + views).toBeGreaterThan(0);
        if (kind === 'wrong-reply') {
          for (const cl of c.clients.values()) if (cl.accepted) expect(cl.accepted.result).not.toMatch(/LIE|FAKE/);
        }
      });
    }
  }
});

describe('two Byzantine replicas among seven', () => {
  it('the primaries of views 0 and 1 equivocate, lie in the view change and to clients', () => {
    const c = run(7, { 1: ['equivocate', 'wrong-reply', 'forge'], 2: ['lie-view-change', 'wrong-reply', 'withhold'] }, 200);
    expect(c.inv.violations).toEqual([]);
    expect(c.inv.accepted).toBeGreaterThan(10);
  });
  it('two silent replicas: the other five carry on', () => {
    const c = run(7, { 3: ['silent'], 6: ['silent'] }, 201);
    expect(c.inv.violations).toEqual([]);
  });
});
