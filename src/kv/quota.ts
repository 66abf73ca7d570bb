/**
 * Cluster-wide quotas of the replicated state: how many keys (KV keys and lock
 * records) and how many bytes (key, value, lock name and owner bytes) it may hold.
 *
 * Every replica holds the whole state, so one replica's memory is the cluster's data:
 * without a bound, 1000 PUTs of 60 KB grew a node from 120 to 250 MB and a restart
 * with that data needed 357 MB, over the 256 MB the shipped systemd unit allows
 * (packaging/quorumd.service). The defaults below keep a node (as run today, through
 * the TypeScript loader) under that limit with the quota full, also after a restart
 * (measured by test/security/node.test.ts; docs/security.md has the numbers).
 *
 * Enforced by the leader when it proposes (admission), not by the state machine when
 * it applies: the state machine must give the same result on every replica, and a
 * quota is configuration that may differ between nodes for a while (a rolling
 * change). The leader counts what its own proposals not yet applied will add
 * (`pending`), so concurrent writes cannot overshoot together; entries an earlier
 * leader left uncommitted in the log are not counted, so the state can exceed the
 * quota by at most those (a few entries) after a leader change. Writes that shrink
 * the state (delete, release, a smaller value) are always allowed.
 */
import { KvError, type Command } from './commands.ts';
import type { KvStateMachine } from './state-machine.ts';

export interface KvQuota {
  /** Keys plus lock records. */
  maxKeys: number;
  /** Bytes of keys, values, lock names and owners. */
  maxBytes: number;
}

/** Defaults (see the header): 16 MiB and 10,000 keys. */
export const DEFAULT_KV_QUOTA: KvQuota = { maxKeys: 10_000, maxBytes: 16 * 1024 * 1024 };

export interface KvUsage {
  keys: number;
  bytes: number;
}

/** UTF-8 length of a string without allocating (lone surrogates count 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** What applying `cmd` on `sm` now would add (negative: it frees). Commands other than put/del/lock.* add nothing. */
export function quotaGrowth(sm: KvStateMachine, cmd: Command): KvUsage {
  switch (cmd.op) {
    case 'put': {
      const cur = sm.get(cmd.key);
      return cur ? { keys: 0, bytes: cmd.value.length - cur.value.length } : { keys: 1, bytes: utf8Length(cmd.key) + cmd.value.length };
    }
    case 'lock.acquire': {
      const cur = sm.getLock(cmd.name);
      return cur ? { keys: 0, bytes: 0 } : { keys: 1, bytes: utf8Length(cmd.name) + utf8Length(cmd.owner) };
    }
    default:
      return { keys: 0, bytes: 0 };
  }
}

/**
 * null when `growth` fits beside `usage` and `pending` (growth of accepted proposals
 * not applied yet); else a KvError 'quota-exceeded' naming the limit. Growth ≤ 0 always fits.
 */
export function checkQuota(quota: KvQuota, usage: KvUsage, pending: KvUsage, growth: KvUsage): KvError | null {
  if (growth.keys > 0 && usage.keys + pending.keys + growth.keys > quota.maxKeys) {
    return new KvError('quota-exceeded', 'key', `quota exceeded: the cluster holds ${usage.keys} keys and locks (${pending.keys} more pending), at most ${quota.maxKeys} allowed (kv.maxKeys); delete some first`);
  }
  if (growth.bytes > 0 && usage.bytes + pending.bytes + growth.bytes > quota.maxBytes) {
    return new KvError('quota-exceeded', 'value', `quota exceeded: the cluster holds ${usage.bytes} bytes of keys and values (${pending.bytes} more pending); this write adds ${growth.bytes}, at most ${quota.maxBytes} allowed (kv.maxBytes); delete some first`);
  }
  return null;
}
