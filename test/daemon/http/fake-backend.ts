/**
 * An ApiBackend over an in-process KvStateMachine (no Raft): every write is applied
 * at once at the next index. `mode` forces the runtime's failure answers so that the
 * HTTP mapping of 503/504 is tested without a cluster.
 */
import { encodeCommand, KvError, KvStateMachine, leaseDigest, type Command } from '../../../src/kv/index.ts';
import type { ApiBackend, KeyView, LeaderView, LockView, StatusView } from '../../../daemon/http/backend.ts';
import type { MetricFamily } from '../../../daemon/http/metrics.ts';
import { resultToClient, type ClientCallback } from '../../../daemon/runtime/index.ts';

export class FakeBackend implements ApiBackend {
  readonly kv = new KvStateMachine();
  mode: 'ok' | 'unavailable' | 'unknown' | 'unknown-said' | 'silent' = 'ok';
  private index = 0;
  private readonly watchers = new Map<string, Set<() => void>>();
  now = 1000;

  keys(prefix: string, limit: number): { index: number; keys: KeyView[]; more: boolean } {
    const all = this.kv.keys(prefix);
    return {
      index: this.kv.appliedIndex,
      keys: all.slice(0, limit).map((key) => ({ key, size: this.kv.get(key)!.value.length, createIndex: this.kv.get(key)!.createIndex, modIndex: this.kv.get(key)!.modIndex })),
      more: all.length > limit,
    };
  }

  locks(prefix: string, limit: number): { index: number; clockMs: number; exact: boolean; locks: LockView[]; more: boolean } {
    const clockMs = Math.max(this.now, this.kv.clockMs);
    const all = this.kv.lockList(clockMs, prefix);
    return { index: this.kv.appliedIndex, clockMs, exact: true, locks: all.slice(0, limit).map((l) => ({ name: l.name, owner: l.owner, token: l.token, ttlMs: l.ttlMs, expiresAt: l.expiresAt })), more: all.length > limit };
  }

  status(): StatusView {
    return { id: 'n1', engine: 'raft', role: 'leader', term: 1, leader: 'n1', active: true, commitIndex: this.index, appliedIndex: this.index, peers: [], links: [], relays: [] };
  }
  leader(): LeaderView {
    return { leader: 'n1', term: 1, token: 1 };
  }
  private write(cmd: Command, cb: ClientCallback): void {
    if (this.mode === 'unavailable') return cb({ status: 503, error: 'no leader' });
    if (this.mode === 'unknown') return cb({ status: 504, error: 'timed out' });
    if (this.mode === 'unknown-said') return cb({ status: 504, error: 'the leader is gone; the write may or may not be applied' });
    if (this.mode === 'silent') return;
    const enc = encodeCommand(cmd);
    if (enc instanceof KvError) return cb({ status: enc.httpStatus, error: enc.message });
    const r = this.kv.apply(++this.index, enc);
    if ((cmd.op === 'put' || cmd.op === 'del') && this.watchers.has(cmd.key)) for (const f of this.watchers.get(cmd.key)!) f();
    cb(resultToClient(r));
  }
  get(key: string, _o: { stale: boolean }, cb: ClientCallback): void {
    if (this.mode === 'unavailable') return cb({ status: 503, error: 'no leader' });
    const e = this.kv.get(key);
    cb(e ? { status: 200, value: e.value, index: e.modIndex } : { status: 404, index: 0 });
  }
  put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    this.write({ op: 'put', key, value, ...(o.cas !== undefined ? { cas: o.cas } : {}) }, cb);
  }
  del(key: string, o: { cas?: number }, cb: ClientCallback): void {
    this.write({ op: 'del', key, ...(o.cas !== undefined ? { cas: o.cas } : {}) }, cb);
  }
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    this.write({ op: 'lock.acquire', name, owner, ttlMs, now: this.now, lease: leaseDigest(lease) }, cb);
  }
  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    this.write({ op: 'lock.renew', name, lease: leaseDigest(lease), now: this.now }, cb);
  }
  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    this.write({ op: 'lock.release', name, lease: leaseDigest(lease) }, cb);
  }
  onKeyChange(key: string, fn: () => void): () => void {
    if (!this.watchers.has(key)) this.watchers.set(key, new Set());
    this.watchers.get(key)!.add(fn);
    return () => this.watchers.get(key)?.delete(fn);
  }
  metrics(): MetricFamily[] {
    return [{ name: 'quorumd_term', help: 'Current term.', type: 'gauge', samples: [{ value: 1 }] }];
  }
}
