/**
 * The simulation timeline (`quorumd sim --html`, `--html-dir`) for the engines beside
 * Raft and bully (timeline.test.ts has those): paxos, zab and pbft. Without a browser
 * (test/browser/timeline.test.ts draws them):
 *   - recording changes nothing: the same trace hash and result with and without it,
 *     every fault kind, with and without STONITH, ZAB with observers, PBFT with liars;
 *   - each engine's page holds its own roles and rounds: Paxos's promised ballots,
 *     ZAB's accepted epochs, PBFT's views, each the number the engine itself holds at
 *     the end of the run; the active spans carry the node's token (PBFT: only the
 *     primary of the view it is in); ZAB observers and PBFT liars have their lanes;
 *   - --html-dir with a failing seed (a disk that lies about fsync) writes its page,
 *     replayed with the same trace;
 *   - from the command: --html and --html-dir work for these engines, and an engine
 *     the simulator does not know is still refused with a clear message.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAULT_KINDS } from '../../../firmware-sim/faults.ts';
import { parseSimOptions, SimOptionError, type SimConfig } from '../../../daemon/sim/options.ts';
import { recordSeed, runAnySeed, timelinePage, writeHtmlDir } from '../../../daemon/sim/timeline/index.ts';
import { runSimCommand } from '../../../daemon/sim.ts';
import type { TimelineData } from '../../../daemon/sim/timeline/recorder.ts';
import type { SeedResult } from '../../../daemon/sim/engine-cluster.ts';
import type { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import type { PaxosStatus } from '../../../src/paxos/multi.ts';
import type { ZabStatus } from '../../../src/zab/zab.ts';
import type { PbftNode } from '../../../src/pbft/pbft.ts';
import { lyingStorage } from './helpers.ts';

const ALL = FAULT_KINDS.join(',');
const tmp = mkdtempSync(join(tmpdir(), 'quorumd-timeline-engines-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function comparable(r: SeedResult): Record<string, unknown> {
  const { wallMs: _w, ...rest } = r;
  return rest;
}

/** The JSON in the page's data element (as the page's script reads it). */
function pageData(html: string): TimelineData {
  const m = /<script type="application\/json" id="timeline-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m, 'the page has its data element').not.toBeNull();
  return JSON.parse(m![1]!) as TimelineData;
}

/** A lane's state changes as [atUs, state name]. */
function states(d: TimelineData, lane: number): Array<[number, string]> {
  const s = d.spans[lane]!;
  const out: Array<[number, string]> = [];
  for (let i = 0; i < s.length; i += 3) out.push([s[i]!, d.states[s[i + 1]!]!]);
  return out;
}

/** The lane's round number in force at `us` (null before the first). */
function roundAt(d: TimelineData, lane: number, us: number): number | null {
  const t = d.terms[lane]!;
  let r: number | null = null;
  for (let i = 0; i < t.length && t[i]! <= us; i += 2) r = t[i + 1]!;
  return r;
}

/** Records a seed, writes its page and reads the data back from the page; also the runtimes as they are at the end. */
function recordPage(cfg: SimConfig, hooks: Parameters<typeof recordSeed>[2] = {}): { result: SeedResult; data: TimelineData; html: string; runtimes: Map<number, EngineRuntime> } {
  const runtimes = new Map<number, EngineRuntime>();
  const { result, data } = recordSeed(cfg, cfg.seeds[0]!, { ...hooks, onRuntime: (rt: EngineRuntime) => runtimes.set(rt.id, rt) } as Parameters<typeof recordSeed>[2]);
  const html = timelinePage(data);
  return { result, data: pageData(html), html, runtimes };
}

/** Every lane's last recorded round equals what the engine of that board holds when the run ended (a running board). */
function expectLastRounds(data: TimelineData, runtimes: Map<number, EngineRuntime>, own: (rt: EngineRuntime) => number): void {
  let compared = 0;
  data.lanes.forEach((l, i) => {
    const rt = runtimes.get(l.id)!;
    if (rt.state !== 'running' || rt.engine === undefined) return;
    const t = data.terms[i]!;
    expect(t.length, `n${l.id} has rounds`).toBeGreaterThanOrEqual(2);
    expect(t.at(-1), `n${l.id}: the last round on its lane`).toBe(own(rt));
    compared++;
  });
  expect(compared).toBe(data.lanes.length);
}

/** Active spans: each opens with a token recorded for that node at that instant; returns how many there are. */
function expectActiveTokens(data: TimelineData): number {
  let active = 0;
  data.lanes.forEach((l, i) => {
    for (const [at, s] of states(data, i)) {
      if (s !== 'active') continue;
      active++;
      let tok: number | null = null;
      for (let k = 0; k < data.tokens.length; k += 3) if (data.tokens[k] === at && data.tokens[k + 1] === l.id) tok = data.tokens[k + 2]!;
      expect(tok, `n${l.id} active at ${at} µs with a token`).not.toBeNull();
      expect(tok!).toBeGreaterThan(0);
    }
  });
  // Tokens never go back; the same one again only for the same node (its leadership's lease lapsed and came back).
  for (let k = 3; k < data.tokens.length; k += 3) {
    expect(data.tokens[k + 2]!).toBeGreaterThanOrEqual(data.tokens[k - 1]!);
    if (data.tokens[k + 2] === data.tokens[k - 1]) expect(data.tokens[k + 1]).toBe(data.tokens[k - 2]);
  }
  return active;
}

describe('sim timeline: paxos, zab, pbft', () => {
  it('recording does not change a run: same trace hash and result (every fault kind, with and without STONITH, ZAB observers, PBFT liars)', () => {
    const cases: SimConfig[] = [
      parseSimOptions({ seed: 1, nodes: 5, engine: 'paxos', time: '15s', faults: ALL }),
      parseSimOptions({ seed: 2, nodes: 3, witness: true, engine: 'paxos', time: '15s', faults: ALL, stonith: false }),
      parseSimOptions({ seed: 1, nodes: 3, observers: 2, engine: 'zab', time: '15s', faults: ALL }),
      parseSimOptions({ seed: 3, nodes: 5, engine: 'zab', time: '15s', faults: ALL, stonith: false, locks: true }),
      parseSimOptions({ seed: 1, nodes: 5, engine: 'pbft', time: '15s', faults: `byzantine,${ALL}` }),
      parseSimOptions({ seed: 2, nodes: 4, engine: 'pbft', time: '15s', faults: ALL, stonith: false }),
    ];
    const applied = new Set<string>();
    for (const cfg of cases) {
      const seed = cfg.seeds[0]!;
      const plain = runAnySeed(cfg, seed);
      const { result, data } = recordSeed(cfg, seed);
      expect(result.trace, `${cfg.engine} seed ${seed}`).toBe(plain.trace);
      expect(comparable(result)).toEqual(comparable(plain));
      expect(data.meta.trace).toBe(plain.trace);
      expect(data.meta.engine).toBe(cfg.engine);
      for (const f of data.faults) applied.add(`${cfg.engine}:${f.kind}`);
    }
    // Faults were applied in every engine's runs (the recording above saw them).
    for (const e of ['paxos', 'zab', 'pbft']) expect([...applied].filter((k) => k.startsWith(`${e}:`)).length, e).toBeGreaterThanOrEqual(4);
  }, 300_000);

  it('paxos: roles in its own words and the ballot each node promised (round.node), as the engine holds it', () => {
    const cfg = parseSimOptions({ seed: 4, nodes: 5, engine: 'paxos', time: '30s', faults: 'crash,power,partition' });
    const { result, data, html, runtimes } = recordPage(cfg);
    expect(result.violation).toBeUndefined();
    expect(html).toContain('seed 4, paxos, 5 nodes');
    expect(data.round).toEqual({ word: 'ballot', idSpan: 256 });
    const all = new Set(data.lanes.flatMap((_l, i) => states(data, i).map(([, s]) => s)));
    for (const s of ['follower', 'prepare', 'active']) expect(all, s).toContain(s);
    // Not the generic names: a Paxos node is never drawn as Raft's candidate.
    expect(all).not.toContain('candidate');
    // Every ballot is round × 256 + the id of a data node that owns it (0: nothing promised yet).
    for (const t of data.terms) {
      for (let i = 1; i < t.length; i += 2) {
        if (t[i] === 0) continue;
        expect(Math.floor(t[i]! / 256)).toBeGreaterThanOrEqual(1);
        expect([1, 2, 3, 4, 5]).toContain(t[i]! % 256);
      }
    }
    expectLastRounds(data, runtimes, (rt) => (rt.engine!.status() as PaxosStatus).promised);
    // A node that became active did so in its own ballot (it owns the ballot it leads with).
    data.lanes.forEach((l, i) => {
      for (const [at, s] of states(data, i)) if (s === 'active') expect(roundAt(data, i, at)! % 256, `n${l.id} active at ${at}`).toBe(l.id);
    });
    expect(expectActiveTokens(data)).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('zab: looking / leading / following with their phases, the accepted epoch, and lanes for the observers', () => {
    const cfg = parseSimOptions({ seed: 1, nodes: 5, observers: 2, engine: 'zab', time: '60s', faults: ALL });
    const { result, data, html, runtimes } = recordPage(cfg);
    expect(result.violation).toBeUndefined();
    expect(html).toContain('seed 1, zab, 5 nodes + 2 observers');
    expect(data.round).toEqual({ word: 'epoch' });
    expect(data.lanes).toEqual([1, 2, 3, 4, 5].map((id) => ({ id, witness: false })).concat([6, 7].map((id) => ({ id, witness: false, observer: true }))));
    const all = new Set(data.lanes.flatMap((_l, i) => states(data, i).map(([, s]) => s)));
    for (const s of ['looking', 'leader', 'follower', 'observer', 'active']) expect(all, s).toContain(s);
    expect([...all].some((s) => /^leading \((discovery|sync)\)$/.test(s)), [...all].join(', ')).toBe(true);
    expect([...all].some((s) => /^following \((discovery|sync)\)$/.test(s)), [...all].join(', ')).toBe(true);
    // ZAB leaders and followers in the broadcast phase are told apart (the generic view drew both as "broadcast").
    expect(all).not.toContain('broadcast');
    // Observers never lead or follow as voters (they look for a leader, then observe it).
    const obs = new Set([5, 6].flatMap((i) => states(data, i).map(([, s]) => s)));
    expect(obs).toContain('observer');
    for (const s of obs) expect(s).not.toMatch(/^(leader|active|follower|leading|following)/);
    expectLastRounds(data, runtimes, (rt) => (rt.engine!.status() as ZabStatus).acceptedEpoch);
    expect(expectActiveTokens(data)).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it('pbft: primary / backup / view-change and the view; active only as the primary of the view it is in, with its leadership token; the liars marked', () => {
    const cfg = parseSimOptions({ seed: 1, nodes: 5, engine: 'pbft', time: '60s', faults: `byzantine,${ALL}` });
    const { result, data, html, runtimes } = recordPage(cfg);
    expect(result.violation).toBeUndefined();
    expect(html).toContain('seed 1, pbft, 5 nodes');
    expect(data.meta.faults[0]).toBe('byzantine');
    expect(data.round).toEqual({ word: 'view' });
    const all = new Set(data.lanes.flatMap((_l, i) => states(data, i).map(([, s]) => s)));
    for (const s of ['backup', 'view-change', 'active']) expect(all, s).toContain(s);
    expect(all).not.toContain('normal');
    // f = 1 of 5: one liar, named with its behaviours.
    const liars = data.lanes.filter((l) => l.byzantine);
    expect(liars).toHaveLength(1);
    expect(liars[0]!.byzantine!.length).toBeGreaterThan(0);
    expectLastRounds(data, runtimes, (rt) => (rt.engine as PbftNode).currentView);
    // The primary of view v is member v mod n: a node is primary or active only in its own views.
    const ids = data.lanes.map((l) => l.id);
    let views = 0;
    data.lanes.forEach((l, i) => {
      for (const [at, s] of states(data, i)) {
        if (s !== 'primary' && s !== 'active') continue;
        const v = roundAt(data, i, at)!;
        expect(ids[v % ids.length], `n${l.id} ${s} at ${at} in view ${v}`).toBe(l.id);
        views++;
      }
    });
    expect(views).toBeGreaterThanOrEqual(3);
    // PBFT reports no activation events: these tokens come from the primaries' leadership tokens.
    expect(expectActiveTokens(data)).toBeGreaterThanOrEqual(3);
    // Its fences say which decision they acted on.
    for (const f of data.fences) expect(f.reason).toMatch(/pbft decision at \d+/);
  }, 180_000);

  it('--html-dir: a page per failing seed for each engine (a disk that lies about fsync), replayed with the same trace', () => {
    const hooks = { wrapStorage: lyingStorage, skipLin: true };
    for (const engine of ['paxos', 'zab', 'pbft'] as const) {
      const cfg = parseSimOptions({ seeds: '1..3', nodes: engine === 'pbft' ? 4 : 3, engine, time: '10s', faults: 'power' });
      const results = cfg.seeds.map((s) => runAnySeed(cfg, s, hooks));
      const failing = results.filter((r) => r.violation);
      expect(failing.length, engine).toBeGreaterThan(0);
      const dir = join(tmp, `dir-${engine}`);
      const w = writeHtmlDir(dir, { ...cfg, htmlDir: dir }, failing, { totals: 't', faultKinds: 'power' }, hooks);
      expect(w.mismatches).toEqual([]);
      expect(w.pages.map((p) => p.seed)).toEqual(failing.map((r) => r.seed));
      const index = readFileSync(join(dir, 'index.html'), 'utf8');
      for (const r of failing) {
        expect(index).toContain(`href="seed-${r.seed}.html"`);
        const html = readFileSync(join(dir, `seed-${r.seed}.html`), 'utf8');
        const d = pageData(html);
        expect(d.meta.engine).toBe(engine);
        expect(d.meta.trace).toBe(r.trace);
        expect(d.violations[0]!.invariant).toBe(r.violation!.invariant);
        expect(html).toContain(`VIOLATION ${r.violation!.invariant}`);
        expect(d.round?.word).toBe({ paxos: 'ballot', zab: 'epoch', pbft: 'view' }[engine]);
        expect(d.terms.some((t) => t.length > 0)).toBe(true);
      }
    }
  }, 180_000);

  it('quorumd sim --html and --html-dir for paxos, zab and pbft from the command; an engine the simulator does not know is refused with exit 2', async () => {
    const err: string[] = [];
    const io = { err: { write: (s: string) => err.push(s) }, progress: false };
    for (const engine of ['paxos', 'zab', 'pbft'] as const) {
      const out: string[] = [];
      const file = join(tmp, `${engine}.html`);
      err.length = 0;
      const code = await runSimCommand({ seed: 2, nodes: 4, engine, time: '5s', faults: 'crash', html: file }, (l) => out.push(l), io);
      expect(code, err.join('')).toBe(0);
      expect(err.join('')).toContain(`timeline of seed 2 written to ${file}`);
      const d = pageData(readFileSync(file, 'utf8'));
      expect(d.meta.engine).toBe(engine);
      expect(out[0]).toContain(`trace=${d.meta.trace}`);
      const dir = join(tmp, `cmd-${engine}`);
      err.length = 0;
      expect(await runSimCommand({ seeds: '1..2', nodes: 4, engine, time: '5s', faults: 'crash', htmlDir: dir }, () => {}, io), err.join('')).toBe(0);
      expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('No seed failed');
      // Parsing alone: no "not implemented" left for any engine the simulator runs.
      expect(() => parseSimOptions({ seed: 1, nodes: 4, engine, html: file })).not.toThrow();
      expect(() => parseSimOptions({ seeds: '1..2', nodes: 4, engine, htmlDir: dir })).not.toThrow();
    }
    err.length = 0;
    expect(await runSimCommand({ seed: 1, engine: 'etcd', html: join(tmp, 'etcd.html') }, () => {}, io)).toBe(2);
    expect(err.join('')).toBe('quorumd sim: --engine: expected raft, bully, paxos, zab or pbft, got "etcd"\n');
    expect(() => parseSimOptions({ seeds: '1..2', engine: 'zookeeper', htmlDir: tmp })).toThrow(SimOptionError);
  }, 180_000);
});
