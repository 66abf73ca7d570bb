/**
 * The simulation timeline (`quorumd sim --html`), without a browser (the browser test
 * is test/browser/timeline.test.ts):
 *   - recording changes nothing: the same trace hash and result with and without it,
 *     for both engines and every fault kind there is (FAULT_KINDS: a kind added later
 *     is covered without editing this test);
 *   - what is recorded is complete: every lane, every applied fault (counted by kind
 *     against the injector's own count), every client request, roles and terms;
 *   - a planted bug's violation is on the page at its step, with its message;
 *   - the page is self-contained, its data round-trips, nothing in the data can close
 *     its <script> element, and a 60 s 5-node run with every fault kind is < 2 MB;
 *   - the page of a seed is the same file on every run (a run is a function of its seed);
 *   - --locks: every lock request with its outcome and every hold is recorded, the
 *     recording changes nothing, and a lock check's violation marks the holds in it;
 *   - --html and --html-dir from the command.
 * The engines paxos, zab and pbft: timeline-engines.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAULT_KINDS } from '../../../firmware-sim/faults.ts';
import { parseSimOptions, type SimConfig } from '../../../daemon/sim/options.ts';
import { recordSeed, runAnySeed, timelinePage, writeHtmlDir } from '../../../daemon/sim/timeline/index.ts';
import { jsonScriptText } from '../../../daemon/ui/assets.ts';
import { runSimCommand } from '../../../daemon/sim.ts';
import type { TimelineData } from '../../../daemon/sim/timeline/recorder.ts';
import type { SeedResult } from '../../../daemon/sim/engine-cluster.ts';
import { lyingStorage } from './helpers.ts';

const ALL = FAULT_KINDS.join(',');
const tmp = mkdtempSync(join(tmpdir(), 'quorumd-timeline-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The result without the wall-clock fields (they differ between any two runs). */
function comparable(r: SeedResult): Record<string, unknown> {
  const { wallMs: _w, ...rest } = r;
  return rest;
}

/** The JSON in the page's data element. */
function pageData(html: string): TimelineData {
  const m = /<script type="application\/json" id="timeline-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m, 'the page has its data element').not.toBeNull();
  return JSON.parse(m![1]!) as TimelineData;
}

function stateNames(d: TimelineData, lane: number): string[] {
  const s = d.spans[lane]!;
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 3) out.push(d.states[s[i + 1]!]!);
  return out;
}

describe('sim timeline', () => {
  it('recording does not change a run: same trace hash and result (raft and bully, every fault kind, with and without STONITH)', () => {
    // Seeds chosen so that between them every fault kind is applied (checked below).
    const cases: SimConfig[] = [
      parseSimOptions({ seed: 1, nodes: 5, time: '15s', faults: ALL, stonith: false }),
      parseSimOptions({ seed: 6, nodes: 5, time: '15s', faults: ALL }),
      parseSimOptions({ seed: 2, nodes: 3, time: '15s', faults: ALL }),
      parseSimOptions({ seed: 3, nodes: 5, witness: true, engine: 'bully', time: '15s', faults: ALL }),
      parseSimOptions({ seed: 4, nodes: 5, engine: 'bully', time: '15s', faults: ALL, stonith: false }),
      parseSimOptions({ seed: 8, nodes: 3, engine: 'bully', time: '15s', faults: ALL }),
    ];
    const applied = new Set<string>();
    for (const cfg of cases) {
      const seed = cfg.seeds[0]!;
      const plain = runAnySeed(cfg, seed);
      const { result, data } = recordSeed(cfg, seed);
      expect(result.trace, `${cfg.engine} seed ${seed}`).toBe(plain.trace);
      expect(comparable(result)).toEqual(comparable(plain));
      expect(data.meta.trace).toBe(plain.trace);
      for (const f of data.faults) applied.add(f.kind);
    }
    expect([...applied].sort()).toEqual([...FAULT_KINDS].sort());
  }, 180_000);

  it('records every lane, every applied fault by kind, every client request, roles and terms (raft)', () => {
    const cfg = parseSimOptions({ seed: 3, nodes: 5, witness: true, time: '30s', faults: ALL });
    const { result, data } = recordSeed(cfg, 3);
    expect(result.violation).toBeUndefined();
    expect(data.lanes).toEqual([1, 2, 3, 4, 5].map((id) => ({ id, witness: false })).concat([{ id: 6, witness: true }]));
    // Faults: the recorder saw exactly what the injector applied, kind by kind.
    const byKind: Record<string, number> = {};
    for (const f of data.faults) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
    expect(byKind).toEqual(result.faultsByKind);
    expect(data.faults.length).toBe(result.faults);
    expect(result.faults).toBeGreaterThan(0);
    for (const f of data.faults) {
      expect(f.at).toBeGreaterThan(0);
      if (f.heal !== null) expect(f.heal).toBeGreaterThanOrEqual(f.at);
      if (f.kind === 'partition') expect(f.groups!.flat()).toContain('broker');
    }
    // Client requests: one record per request issued, each returning after its call.
    expect(data.ops.cols.length / 7).toBe(result.ops);
    expect(data.ops.values.length).toBe(result.ops);
    for (let i = 0; i < data.ops.cols.length; i += 7) expect(data.ops.cols[i + 1]!).toBeGreaterThanOrEqual(data.ops.cols[i]!);
    expect(new Set(data.ops.outcomes.filter((_o, k) => data.ops.cols.some((v, j) => j % 7 === 6 && v === k)))).toContain('ok');
    // Every lane starts booting at 0 and its changes are in time order; within a boot,
    // terms never go back. Across a reboot they may: the recorder sees the engine's term,
    // which runs ahead of the durable one until its Ready is persisted (a candidate that
    // loses power right after its term bump comes back with the term it had on disk,
    // having promised nothing in the lost one: its vote leaves only once durable).
    // Election safety, which a forgotten promise would break, is the simulator's own
    // invariant, checked in every run.
    data.spans.forEach((s, lane) => {
      expect(s[0]).toBe(0);
      expect(data.states[s[1]!]).toBe('booting');
      for (let i = 3; i < s.length; i += 3) expect(s[i]!).toBeGreaterThan(s[i - 3]!);
      const boots: number[] = [];
      for (let i = 0; i < s.length; i += 3) if (data.states[s[i + 1]!] === 'booting') boots.push(s[i]!);
      const bootOf = (at: number) => boots.filter((b) => b <= at).length;
      const t = data.terms[lane]!;
      for (let i = 2; i < t.length; i += 2) if (bootOf(t[i]!) === bootOf(t[i - 2]!)) expect(t[i + 1]!).toBeGreaterThanOrEqual(t[i - 1]!);
    });
    const all = data.lanes.flatMap((_l, i) => stateNames(data, i));
    expect(all).toContain('follower');
    expect(all).toContain('active');
    expect(stateNames(data, 5)).not.toContain('active'); // the witness never leads
    // Fencing tokens of successive activations only grow.
    for (let i = 3; i < data.tokens.length; i += 3) expect(data.tokens[i + 2]!).toBeGreaterThan(data.tokens[i - 1]!);
    expect(Number.isInteger(data.end)).toBe(true); // µs
    expect(Math.abs(data.end / 1000 - result.virtualMs)).toBeLessThanOrEqual(1);
    expect(data.violations).toEqual([]);
  });

  it('bully: coordinators, epochs, fences and relay switches are recorded', () => {
    const cfg = parseSimOptions({ seed: 3, nodes: 5, engine: 'bully', time: '60s', faults: ALL });
    const { result, data } = recordSeed(cfg, 3);
    expect(result.violation).toBeUndefined();
    const all = data.lanes.flatMap((_l, i) => stateNames(data, i));
    expect(all).toContain('coordinator');
    expect(all).toContain('active');
    expect(data.terms.some((t) => t.length >= 4)).toBe(true);
    // The result counts fences that switched a board off (or found it off) and failed ones.
    const counted = data.fences.filter((f) => ['off', 'already-off', 'failed'].includes(f.outcome)).length;
    expect(counted).toBe((result.fences ?? 0) + (result.fencesFailed ?? 0));
    expect(counted).toBeGreaterThan(0);
    expect(data.relays.length / 4).toBeGreaterThan(0);
    // A relay that opened put its target's lane into "off (fenced)".
    const opened: number[] = [];
    for (let i = 0; i < data.relays.length; i += 4) if (data.relays[i + 3] === 0) opened.push(data.relays[i + 2]!);
    expect(opened.length).toBeGreaterThan(0);
    expect(stateNames(data, data.lanes.findIndex((l) => l.id === opened[0]))).toContain('off (fenced)');
  });

  it('a planted bug (a disk that lies about fsync): the violation is recorded at its step with its message', () => {
    const cfg = parseSimOptions({ seed: 1, nodes: 3, time: '10s', faults: 'power' });
    const { result, data } = recordSeed(cfg, 1, { wrapStorage: lyingStorage, skipLin: true });
    expect(result.violation?.invariant).toBe('durable-commit');
    expect(data.violations).toEqual([{ at: Math.round(result.violation!.atMs * 1000), invariant: 'durable-commit', detail: result.violation!.detail }]);
    const html = timelinePage(data);
    expect(html).toContain('VIOLATION durable-commit');
    expect(html).toContain(result.violation!.detail);
    expect(html).toContain('quorumd sim --seed 1 --nodes 3 --engine raft --time 10s --faults power');
  });

  it('the page of a seed is the same file on every run (with and without --locks --process-clocks)', () => {
    for (const opts of [{ faults: ALL }, { faults: 'crash,partition,stall', locks: true, processClocks: true }]) {
      const cfg = parseSimOptions({ seed: 4, nodes: 3, time: '10s', ...opts });
      const a = timelinePage(recordSeed(cfg, 4).data);
      const b = timelinePage(recordSeed(cfg, 4).data);
      expect(a === b, `${JSON.stringify(opts)}: two runs of seed 4 gave different pages`).toBe(true);
      expect(pageData(a).meta.summary).not.toMatch(/wall_ms|speed=/);
    }
  });

  it('--locks: every lock request with its outcome and every hold is recorded; recording changes nothing; without --locks nothing of it', () => {
    const cfg = parseSimOptions({ seed: 3, nodes: 3, time: '30s', faults: 'crash,partition,stall', locks: true, processClocks: true });
    const plain = runAnySeed(cfg, 3);
    const { result, data } = recordSeed(cfg, 3);
    expect(result.trace).toBe(plain.trace);
    expect(comparable(result)).toEqual(comparable(plain));
    expect(result.violation).toBeUndefined();
    const L = data.locks!;
    const st = result.locks!;
    // One record per request, each returning after its call, its outcome counted as the stats count it.
    expect(L.cols.length / 10).toBe(st.issued);
    const n: Record<string, number> = {};
    for (let i = 0; i < L.cols.length; i += 10) {
      expect(L.cols[i + 1]!).toBeGreaterThanOrEqual(L.cols[i]!);
      const o = L.outcomes[L.cols[i + 6]!]!;
      n[o] = (n[o] ?? 0) + 1;
      if (o === 'granted') expect(L.cols[i + 7]!).toBeGreaterThan(0);
    }
    expect(n.granted).toBe(st.grants);
    expect(n.renewed).toBe(st.renewals);
    expect(n.released ?? 0).toBe(st.releases);
    expect((n.held ?? 0) + (n.expired ?? 0)).toBe(st.conflicts);
    expect((n.unavailable ?? 0) + (n.unknown ?? 0) + (n.timeout ?? 0) + (n.error ?? 0)).toBe(st.unavailable);
    expect(n.error).toBeUndefined();
    // One hold per grant, with the grant's token; its stretches start at or after the grant and do not overlap.
    expect(L.holds.length / 7).toBe(st.grants);
    const grantTokens = new Set<number>();
    for (let i = 0; i < L.cols.length; i += 10) if (L.outcomes[L.cols[i + 6]!] === 'granted') grantTokens.add(L.cols[i + 7]!);
    for (let h = 0; h < L.holds.length; h += 7) {
      expect(grantTokens.has(L.holds[h + 3]!)).toBe(true);
      expect(L.holds[h + 6]).toBe(0);
    }
    const ends = new Set<string>();
    for (let h = 0; h < L.holds.length; h += 7) ends.add(L.ends[L.holds[h + 5]!]!);
    expect([...ends].every((e) => ['held', 'released', 'lapsed', 'lost', 'overdue'].includes(e))).toBe(true);
    const last = new Map<number, number>();
    for (let i = 0; i < L.spans.length; i += 3) {
      const hold = L.spans[i + 2]! * 7;
      expect(L.spans[i]!).toBeGreaterThanOrEqual(L.holds[hold]!);
      expect(L.spans[i + 1]!).toBeGreaterThan(L.spans[i]!);
      expect(L.spans[i]!).toBeGreaterThan(last.get(hold) ?? -1);
      last.set(hold, L.spans[i + 1]!);
    }
    expect(L.spans.length / 3).toBeGreaterThanOrEqual(st.grants);
    // Two holds of one lock never overlap in a clean run (what lock-mutual-exclusion checks).
    for (let i = 0; i < L.spans.length; i += 3) {
      for (let j = i + 3; j < L.spans.length; j += 3) {
        const a = L.spans[i + 2]! * 7;
        const b = L.spans[j + 2]! * 7;
        if (a === b || L.holds[a + 2] !== L.holds[b + 2]) continue;
        expect(L.spans[i]! < L.spans[j + 1]! && L.spans[j]! < L.spans[i + 1]!).toBe(false);
      }
    }
    expect(recordSeed(parseSimOptions({ seed: 3, nodes: 3, time: '5s', faults: 'crash' }), 3).data).not.toHaveProperty('locks');
  });

  it('--locks: a lock check\'s violation (the old lock clock rule planted) is recorded at its step, and the two holds in it are marked', () => {
    const cfg = parseSimOptions({ seed: 8, nodes: 3, time: '12s', faults: 'crash,partition,stall', locks: true, processClocks: true });
    const { result, data } = recordSeed(cfg, 8, { runtime: { plantedLockClock: 'clamped-offset' }, skipLin: true });
    expect(result.violation?.invariant).toBe('lock-mutual-exclusion');
    expect(data.violations).toEqual([{ at: Math.round(result.violation!.atMs * 1000), invariant: 'lock-mutual-exclusion', detail: result.violation!.detail }]);
    const L = data.locks!;
    const marked: number[] = [];
    for (let h = 0; h < L.holds.length; h += 7) if (L.holds[h + 6] === 1) marked.push(h);
    expect(marked).toHaveLength(2);
    const [a, b] = marked as [number, number];
    expect(L.holds[a + 2]).toBe(L.holds[b + 2]); // one lock
    expect(L.holds[a + 1]).not.toBe(L.holds[b + 1]); // two clients
    expect(result.violation!.detail).toContain(`(token ${L.holds[a + 3]}`);
    expect(result.violation!.detail).toContain(`(token ${L.holds[b + 3]}`);
    const html = timelinePage(data);
    expect(html).toContain('VIOLATION lock-mutual-exclusion');
  });

  it('the page is self-contained, its data round-trips, and a 60 s 5-node run with every fault kind is under 2 MB', () => {
    const cfg = parseSimOptions({ seed: 1, nodes: 5, time: '60s', faults: ALL });
    const { result, data } = recordSeed(cfg, 1);
    const html = timelinePage(data);
    const bytes = Buffer.byteLength(html);
    console.log(`timeline page of a 60 s 5-node run (seed 1, every fault kind, ${result.ops} requests, ${result.faults} faults): ${(bytes / 1024).toFixed(0)} KiB`);
    expect(bytes).toBeLessThan(2_000_000);
    // Nothing to fetch: no external script, stylesheet, image or frame.
    expect(html).not.toMatch(/<(script|img|iframe|link)\b[^>]*\b(src|href)=/i);
    expect(html).not.toMatch(/\burl\(/i);
    expect(html).not.toMatch(/@import/i);
    // uPlot and the renderers are inlined.
    expect(html).toContain('QuorumdLanes');
    expect(html).toMatch(/var uPlot=function/);
    expect(pageData(html)).toEqual(JSON.parse(JSON.stringify(data)));
  });

  it('the page carries a Content-Security-Policy that lets its own inline scripts run and nothing else, and fetches nothing', () => {
    const cfg = parseSimOptions({ seed: 3, nodes: 3, time: '5s', faults: 'crash' });
    const html = timelinePage(recordSeed(cfg, 3).data);
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
    expect(meta, 'a CSP meta element').not.toBeNull();
    const csp = meta![1]!.replace(/&#39;/g, "'");
    // Before every script: a policy only applies to what follows it.
    expect(html.indexOf('<meta http-equiv="Content-Security-Policy"')).toBeLessThan(html.indexOf('<script'));
    const directives = new Map(csp.split(/;\s*/).map((d) => [d.split(' ')[0]!, d.split(' ').slice(1)] as const));
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('base-uri')).toEqual(["'none'"]);
    expect(directives.get('form-action')).toEqual(["'none'"]);
    const allowed = directives.get('script-src')!;
    expect(allowed.some((s) => /unsafe|self|\*|https?:|data:|blob:/.test(s)), allowed.join(' ')).toBe(false);
    // Each inline script the page runs is allowed by its hash, and nothing else is.
    const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(inline).toHaveLength(3);
    const hashes = inline.map((t) => `'sha256-${createHash('sha256').update(t, 'utf8').digest('base64')}'`);
    expect(allowed).toEqual(hashes);
    // The index page of --html-dir runs no script at all.
    const dir = join(tmp, 'csp-dir');
    const res = writeHtmlDir(dir, parseSimOptions({ seeds: '1..1', nodes: 3, time: '2s' }), [], { totals: 't', faultKinds: '' });
    expect(readFileSync(res.index, 'utf8')).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src/);
  });

  it('hostile text in every string of the data stays text: no element of it gets into the page', () => {
    const cfg = parseSimOptions({ seed: 1, nodes: 3, time: '5s', faults: 'crash,partition', locks: true });
    const { data } = recordSeed(cfg, 1);
    const evil = '"\'><script>window.__pwned=1</script><img src=x onerror=alert(1)></title></style><!--';
    // The same suffix on every string keeps equal strings equal (names used as keys stay consistent).
    const taint = (v: unknown): unknown =>
      typeof v === 'string' ? v + evil : Array.isArray(v) ? v.map(taint) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, taint(x)])) : v;
    const bad = taint(data) as TimelineData;
    bad.violations = [{ ...(bad.violations[0] ?? { at: 1e6, invariant: 'x' }), invariant: `inv${evil}`, detail: `detail${evil}` } as TimelineData['violations'][number]];
    const html = timelinePage(bad);
    const clean = timelinePage(data);
    // As many tags as the page without it has (its own, and a mention of one in a comment of page.js).
    for (const tag of [/<script\b/gi, /<\/script>/gi, /<img\b/gi, /<\/title>/gi, /<\/style>/gi, /<!--/g]) {
      expect(html.match(tag)?.length ?? 0, String(tag)).toBe(clean.match(tag)?.length ?? 0);
    }
    expect(html).not.toContain(evil);
    expect(pageData(html)).toEqual(JSON.parse(JSON.stringify(bad)));
  });

  it('nothing in the data can close its <script> element', () => {
    const evil = { detail: '</script><script>alert(1)</script> <!-- \u2028' };
    const text = jsonScriptText(evil);
    expect(text).not.toMatch(/<\/script/i);
    expect(text).not.toContain('<!--');
    expect(JSON.parse(text)).toEqual(evil);
  });

  it('--html-dir: a page per failing seed (replayed with the same trace) and an index linking them', () => {
    const cfg = parseSimOptions({ seeds: '1..3', nodes: 3, time: '10s', faults: 'power' });
    const hooks = { wrapStorage: lyingStorage, skipLin: true };
    const results = cfg.seeds.map((s) => runAnySeed(cfg, s, hooks));
    const failing = results.filter((r) => r.violation);
    expect(failing.length).toBeGreaterThan(0);
    const dir = join(tmp, 'dir');
    const w = writeHtmlDir(dir, { ...cfg, htmlDir: dir }, failing, { totals: 'seeds=3 violations=…', faultKinds: 'power:3' }, hooks);
    expect(w.mismatches).toEqual([]);
    expect(w.pages.map((p) => p.seed)).toEqual(failing.map((r) => r.seed));
    const index = readFileSync(join(dir, 'index.html'), 'utf8');
    for (const r of failing) {
      expect(index).toContain(`href="seed-${r.seed}.html"`);
      expect(index).toContain(r.violation!.invariant);
      const page = readFileSync(join(dir, `seed-${r.seed}.html`), 'utf8');
      expect(pageData(page).violations[0]!.invariant).toBe(r.violation!.invariant);
      expect(pageData(page).meta.trace).toBe(r.trace);
    }
    expect(index).toContain('power:3');
  });

  it('quorumd sim --html FILE and --html-dir DIR from the command; bad uses are refused with exit 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { err: { write: (s: string) => err.push(s) }, progress: false };
    const file = join(tmp, 'one.html');
    expect(await runSimCommand({ seed: 2, nodes: 3, time: '5s', faults: 'crash,loss', html: file }, (l) => out.push(l), io)).toBe(0);
    expect(err.join('')).toContain(`timeline of seed 2 written to ${file}`);
    const d = pageData(readFileSync(file, 'utf8'));
    expect(d.meta.seed).toBe(2);
    expect(out[0]).toContain(`trace=${d.meta.trace}`);
    // The printed line less what measures the machine (the page is the same file on every run).
    expect(out[0]).toMatch(/ virtual_ms=\d+ wall_ms=\d+ speed=\d+x/);
    expect(d.meta.summary).toBe(out[0]!.replace(/ wall_ms=\d+ speed=\d+x/, ''));

    const dir = join(tmp, 'clean');
    expect(await runSimCommand({ seeds: '1..2', nodes: 3, time: '5s', faults: 'crash', htmlDir: dir }, () => {}, io)).toBe(0);
    expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('No seed failed');

    err.length = 0;
    expect(await runSimCommand({ seeds: '1..2', html: file }, () => {}, io)).toBe(2);
    expect(err.join('')).toMatch(/--html: writes the page of one seed.*--html-dir/);
    err.length = 0;
    expect(await runSimCommand({ seed: 1, html: join(tmp, 'no', 'such', 'dir', 'x.html') }, () => {}, io)).toBe(2);
    expect(err.join('')).toMatch(/--html: the folder .*no\/such\/dir.* does not exist/);
    err.length = 0;
    expect(await runSimCommand({ seed: 1, html: tmp }, () => {}, io)).toBe(2);
    expect(err.join('')).toMatch(/is a folder; give a file name/);
    err.length = 0;
    expect(await runSimCommand({ seed: 1, html: file, htmlDir: dir }, () => {}, io)).toBe(2);
    expect(err.join('')).toMatch(/not both/);
    expect(existsSync(join(tmp, 'no'))).toBe(false);
    // A page that cannot be written after the run (here /proc, a folder nobody can add
    // files to, root included): the run is still reported, the failure said, exit 2.
    err.length = 0;
    out.length = 0;
    expect(await runSimCommand({ seed: 1, nodes: 3, time: '3s', html: '/proc/quorumd-timeline.html' }, (l) => out.push(l), io)).toBe(2);
    expect(out[0]).toMatch(/^seed=1 ok trace=/);
    expect(out.at(-1)).toMatch(/^seeds=1 violations=0 /);
    expect(err.join('')).toMatch(/cannot write the timeline to \/proc\/quorumd-timeline\.html: /);
  });
});
