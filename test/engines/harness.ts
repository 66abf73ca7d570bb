/**
 * Helpers shared by the etcd and ZooKeeper engine tests: engines in this process (one
 * client each, so that one can be cut off through its own TCP proxy), one timeline of
 * every node's activation events on one clock, and the safety checks over it:
 *
 *   - never two nodes active at the same instant;
 *   - the tokens of successive activations by different nodes strictly grow
 *     (a node may resume with its own token after its window closed and reopened);
 *   - the gap between one node's deactivation and the next node's activation.
 */
import { randomBytes } from 'node:crypto';
import type { ActivationEvent, ExternalEngine } from '../../daemon/engines/types.ts';
import type { ClientCallback, ClientResult } from '../../daemon/runtime/results.ts';

export const quietLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (f: Record<string, unknown>, m: string) => console.error('engine error:', m, f),
};

export interface Stamped extends ActivationEvent {
  node: string;
}

export class Timeline {
  readonly events: Stamped[] = [];
  private readonly offs: Array<() => void> = [];

  watch(node: string, e: ExternalEngine): void {
    this.offs.push(e.onActivation((ev) => this.events.push({ ...ev, node })));
  }

  /** Who is active now by the events (the last event per node). */
  activeNodes(): string[] {
    const last = new Map<string, Stamped>();
    for (const ev of this.events) last.set(ev.node, ev);
    return [...last.values()].filter((e) => e.active).map((e) => e.node);
  }

  /** Throws when two nodes were active at once, or tokens went backwards across nodes. */
  check(): void {
    let active: Stamped | undefined;
    let lastToken = 0;
    let lastNode = '';
    for (const ev of this.events) {
      if (ev.active) {
        if (active && active.node !== ev.node) {
          throw new Error(`two active leaders: ${active.node} (token ${active.token}, since ${active.atMs.toFixed(1)}) and ${ev.node} (token ${ev.token}) at ${ev.atMs.toFixed(1)}\n${this.dump()}`);
        }
        if (ev.node !== lastNode && ev.token <= lastToken) throw new Error(`token went backwards: ${ev.node} active with ${ev.token} after ${lastNode}'s ${lastToken}\n${this.dump()}`);
        if (ev.node === lastNode && ev.token < lastToken) throw new Error(`token went backwards on ${ev.node}: ${ev.token} < ${lastToken}`);
        active = ev;
        lastToken = ev.token;
        lastNode = ev.node;
      } else if (active?.node === ev.node) {
        active = undefined;
      }
    }
  }

  /** The gaps (ms) between a node's deactivation and the next activation of another node. */
  handoverGaps(): Array<{ from: string; to: string; gapMs: number; reason: string }> {
    const out: Array<{ from: string; to: string; gapMs: number; reason: string }> = [];
    let off: Stamped | undefined;
    for (const ev of this.events) {
      if (!ev.active) off = ev;
      else if (off && off.node !== ev.node) {
        out.push({ from: off.node, to: ev.node, gapMs: ev.atMs - off.atMs, reason: off.reason });
        off = undefined;
      } else off = undefined;
    }
    return out;
  }

  dump(): string {
    const t0 = this.events[0]?.atMs ?? 0;
    return this.events.map((e) => `  +${(e.atMs - t0).toFixed(1)} ms ${e.node} ${e.active ? 'ACTIVE' : 'inactive'} token=${e.token} (${e.reason})`).join('\n');
  }

  close(): void {
    for (const f of this.offs) f();
  }
}

/** A client call as a promise. */
export function call(f: (cb: ClientCallback) => void): Promise<ClientResult> {
  return new Promise((resolve) => f(resolve));
}

export const text = (s: string) => new TextEncoder().encode(s);
/** A fresh lock lease id (what the HTTP server makes for an acquire). */
export const lease = () => randomBytes(16).toString('base64url');
export const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b ?? new Uint8Array());

/**
 * Service discovery over an external engine: registries on two nodes (the leader and
 * another), instances on both; the other node's registry stops (its renewals end, as
 * when its process dies) and the leader's registry removes its instances; a watch
 * returns at each change. Shared by the etcd and ZooKeeper tests.
 */
export async function servicesScenario(leader: ExternalEngine, other: ExternalEngine, names: [string, string]): Promise<{ reapedMs: number }> {
  const { ServiceRegistry } = await import('../../daemon/services/registry.ts');
  const { parseInstanceDef } = await import('../../daemon/services/catalog.ts');
  const { ExternalBackend } = await import('../../daemon/engines/backend.ts');
  const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
  const members = [{ id: 1, name: names[0], role: 'voter' as const }, { id: 2, name: names[1], role: 'voter' as const }];
  const bl = new ExternalBackend(leader, members[0]!, members, 't');
  const bo = new ExternalBackend(other, members[1]!, members, 't');
  const rl = new ServiceRegistry(bl, { self: names[0], nodeTtlMs: 1500, scriptChecks: false, log });
  const ro = new ServiceRegistry(bo, { self: names[1], nodeTtlMs: 1500, scriptChecks: false, log });
  rl.start();
  ro.start();
  // On a loaded machine the service client may be between connections (its session
  // survives): a call then answers 503 "nothing was sent", which a user retries. Bounded.
  const again = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const end = performance.now() + 30_000;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!((e as { status?: number }).status === 503 && performance.now() < end)) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  try {
    const before = await again('list', () => rl.list({ stale: false }));
    const watch = rl.watch(before.index, 10_000);
    await again('register o1', () => ro.register(parseInstanceDef('web', 'o1', { address: '10.0.0.2', port: 80 }), { operator: false }));
    const w = await watch;
    if (!(w.index > before.index) || !w.instances.some((v) => v.instance === 'o1')) throw new Error(`the watch did not see the registration: ${JSON.stringify(w)}`);
    await again('register l1', () => rl.register(parseInstanceDef('web', 'l1', { address: '10.0.0.1', port: 80, tags: ['a'] }), { operator: false }));
    await again('register o2', () => ro.register(parseInstanceDef('web', 'o2', { address: '10.0.0.3', port: 81 }), { operator: false }));
    const all = await again('list', () => ro.list({ stale: false }));
    if (all.instances.map((v) => v.instance).join(',') !== 'l1,o1,o2') throw new Error(`list: ${all.instances.map((v) => v.instance).join(',')}`);
    await again('deregister o2', () => rl.deregister('web', 'o2'));
    if ((await again('list', () => ro.list({ stale: false }))).instances.length !== 2) throw new Error('deregister from another node did not remove o2');
    // The other node goes silent: the leader's registry removes its instance after nodeTtlMs.
    ro.stop();
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) {
      const c = await rl.list({ stale: false });
      if (c.instances.length === 1 && c.instances[0]!.instance === 'l1') return { reapedMs: performance.now() - t0 };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the silent node\'s instance was not removed within 15 s');
  } finally {
    rl.stop();
    ro.stop();
    bl.detach();
    bo.detach();
  }
}

/**
 * Locks on an external engine, from two nodes: the token only grows, a holder is asked
 * again only with its lease id (the owner's name is public), renew and release need the
 * lease id, and an unrenewed grant expires (TTL 1 s) so another owner gets it.
 */
export async function checkLocks(a: ExternalEngine, b: ExternalEngine): Promise<void> {
  const { expect } = await import('vitest');
  const { until } = await import('./servers.ts');
  const [LA, LB, LC] = [lease(), lease(), lease()];
  const l1 = await call((cb) => a.lockAcquire('backup', 'job-a', 1000, LA, cb));
  expect(l1.status).toBe(200);
  expect(await call((cb) => b.lockAcquire('backup', 'job-b', 1000, LB, cb))).toMatchObject({ status: 409, holder: 'job-a' });
  // The owner's name is public: without its lease id it is not the holder.
  expect(await call((cb) => b.lockAcquire('backup', 'job-a', 1000, LB, cb))).toMatchObject({ status: 409, holder: 'job-a' });
  expect(await call((cb) => b.lockAcquire('backup', 'job-a', 1000, LA, cb))).toMatchObject({ status: 200, token: l1.token });
  expect(await call((cb) => b.lockRenew('backup', LA, cb))).toMatchObject({ status: 200, token: l1.token });
  expect((await call((cb) => b.lockRenew('backup', LB, cb))).status).toBe(409);
  expect((await call((cb) => b.lockRelease('backup', LB, cb))).status).toBe(409);
  expect((await call((cb) => a.lockRenew('backup', 'short', cb))).status).toBe(400);
  expect((await call((cb) => b.lockRelease('backup', LA, cb))).status).toBe(200);
  const l2 = await call((cb) => b.lockAcquire('backup', 'job-b', 1000, LB, cb));
  expect(l2.status).toBe(200);
  expect(l2.token!).toBeGreaterThan(l1.token!);
  // Not renewed: it expires and someone else gets it, with a larger token.
  const l3 = await until('the lock expired', async () => {
    const r = await call((cb) => a.lockAcquire('backup', 'job-c', 1000, LC, cb));
    return r.status === 200 ? r : undefined;
  }, 15_000, 200);
  expect(l3.token!).toBeGreaterThan(l2.token!);
  expect((await call((cb) => b.lockRenew('backup', LB, cb))).status).toBe(409);
}

export interface CutResult {
  /** ms after the cut: the cut-off leader switched off; the next leader switched on. */
  offMs: number;
  onMs: number;
  /** on − off: must be > 0. */
  gapMs: number;
  offReason: string;
  tokens: [number, number];
}

/**
 * The partition scenario of the tests and the bench: n1 reaches the service only
 * through `proxies` and leads; n2 and n3 reach it directly and wait; the proxies
 * black-hole everything; n1 must switch itself off before n2 or n3 switches on
 * (checked on one clock with the Timeline), tokens grow. With `heal`, the proxies
 * forward again and n1 (whose lease/session expired) must come back as a candidate.
 */
export async function cutScenario(o: { viaProxies: ExternalEngine; direct: ExternalEngine[]; proxies: Array<{ cut(): void; heal(): void }>; heal: boolean }): Promise<CutResult> {
  const { until } = await import('./servers.ts');
  const a = o.viaProxies;
  const tl = new Timeline();
  tl.watch('n1', a);
  o.direct.forEach((n, i) => tl.watch(`n${i + 2}`, n));
  try {
    a.start();
    await until('n1 leads', () => a.active, 30_000);
    for (const n of o.direct) n.start();
    await until('the others wait', () => o.direct.every((n) => n.status().role === 'candidate'), 30_000);
    for (const p of o.proxies) p.cut();
    const cutAt = performance.now();
    const next = await until('another leader', () => o.direct.find((n) => n.active), 60_000);
    // Safety first: n1 must be off by the time another node is on.
    if (a.active) throw new Error(`n1 is still active after another node became active:\n${tl.dump()}`);
    tl.check();
    const off = tl.events.find((e) => e.node === 'n1' && !e.active);
    const on = tl.events.find((e) => e.node !== 'n1' && e.active);
    if (!off || !on) throw new Error(`expected n1 off and another node on:\n${tl.dump()}`);
    if (o.heal) {
      for (const p of o.proxies) p.heal();
      await until('n1 is a candidate again', () => a.status().role === 'candidate', 30_000);
      if (a.active || !next.active) throw new Error(`after the heal: n1 active ${a.active}, the new leader active ${next.active}`);
      tl.check();
    }
    return { offMs: off.atMs - cutAt, onMs: on.atMs - cutAt, gapMs: on.atMs - off.atMs, offReason: off.reason, tokens: [off.token, on.token] };
  } finally {
    for (const n of [a, ...o.direct]) await n.stop();
    tl.close();
  }
}
