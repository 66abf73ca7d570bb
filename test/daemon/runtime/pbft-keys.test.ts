/**
 * Per-board PBFT keys in the engine runtime (issue 17), four boards on a simulated World.
 * Boards 1–3 sign with keys of their own (as from pbft.privateKey/publicKeys; dev seeds
 * here so that the run stays a function of its seed). Board 4 is a board reflashed by
 * someone who read the cluster key: it holds no other board's private key, so the best
 * it can do is the keys derived from the cluster key. What it signs is refused by the
 * boards that use key files, and their replies do not verify under the derived keys
 * (both fail if the runtime ignored `pbftAuth` and derived its keys as before).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pbftWorld } from '../../helpers/pbft-world.ts';
import { derivedPbftAuth } from '../../../daemon/runtime/pbft-host.ts';
import { acceptReplies, type PbftReply } from '../../../src/pbft/reply.ts';
import { devKeySeed, ed25519Auth, ed25519PrivateKeyFromSeed } from '../../../src/pbft/auth.ts';
import { encodeCommand } from '../../../src/kv/index.ts';
import { encodeClientOp } from '../../../daemon/runtime/pbft-clients.ts';
import { sha256 } from '../../../src/pbft/encoding.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY_TEXT = 'pbft-keys-test';
const CLUSTER_KEY = new Uint8Array(createHash('sha256').update(KEY_TEXT).digest());
const IDS: NodeId[] = [1, 2, 3, 4];
const enc = (s: string) => new TextEncoder().encode(s);

const priv = new Map<NodeId, KeyObject>(IDS.map((id) => [id, ed25519PrivateKeyFromSeed(devKeySeed(`pbft-keys-test-file/${id}`))]));
const pubs = new Map<NodeId, KeyObject>(IDS.map((id) => [id, createPublicKey(priv.get(id)!)]));
const fileAuth = (id: NodeId) => ed25519Auth(id, priv.get(id)!, pubs);
/** The thief's: every key it can derive from the cluster key (the cluster id is the helper's, 3). */
const derivedAuth = (id: NodeId) => derivedPbftAuth(id, IDS, CLUSTER_KEY, 3);

describe('pbft per-board keys on four simulated boards', () => {
  it('boards with key files commit among themselves, refuse what a cluster-key holder signs, and sign replies only their keys verify', () => {
    const c = pbftWorld({ seed: 11, keyText: KEY_TEXT, ids: IDS, pbftAuth: (id) => (id === 4 ? derivedAuth(4) : fileAuth(id)) });
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)?.state === 'running'), 5000);

    // 3 = 2f + 1 boards with file keys: a write through board 1 commits.
    const client = { id: new Uint8Array(16).fill(7), seq: 1 };
    const w = c.call((cb) => c.rt.get(1)!.put('k', enc('v1'), { pbftClient: client }, cb));
    expect(w?.status, w?.error).toBe(200);

    // Their signed replies verify under the file keys, not under the derived ones.
    const replies = (): PbftReply[] => [1, 2, 3].map((n) => c.rt.get(n)!.pbftClientReply(client.id, 1)).filter((x): x is PbftReply => x !== undefined);
    c.world.runUntil(() => replies().length === 3, 5000);
    const rs = replies();
    expect(rs.length).toBe(3);
    const op = encodeClientOp({ ...client, kind: 'write', command: encodeCommand({ op: 'put', key: 'k', value: enc('v1') }) as Uint8Array });
    const want = { origin: rs[0]!.origin, reqNo: rs[0]!.reqNo, opDigest: sha256(op) };
    expect(acceptReplies(rs, want, { members: IDS, f: 1 }, fileAuth(4)).ok).toBe(true);
    expect(acceptReplies(rs, want, { members: IDS, f: 1 }, derivedAuth(4)).ok).toBe(false);

    // Board 4 signs a request (and its PREPAREs and COMMITs) with the key derived from the
    // cluster key: boards 1–3 refuse it, so its write never executes there.
    let answered = false;
    c.rt.get(4)!.put('forged', enc('x'), {}, () => (answered = true));
    c.world.runUntil(() => answered, 15_000);
    for (const n of [1, 2, 3]) expect(c.rt.get(n)!.stateMachine.get('forged')).toBeUndefined();
    // ... while the honest boards keep committing (the thief is one of f = 1 faults).
    const w2 = c.call((cb) => c.rt.get(2)!.put('k2', enc('v2'), {}, cb));
    expect(w2?.status, w2?.error).toBe(200);
    for (const n of [1, 2, 3]) c.world.runUntil(() => c.rt.get(n)!.stateMachine.get('k2') !== undefined, 5000);
    for (const n of [1, 2, 3]) expect(c.rt.get(n)!.stateMachine.get('k2')).toBeDefined();
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('control: with every board on derived keys (no key files) the same write through board 4 executes', () => {
    const c = pbftWorld({ seed: 11, keyText: KEY_TEXT, ids: IDS });
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)?.state === 'running'), 5000);
    const w = c.call((cb) => c.rt.get(4)!.put('forged', enc('x'), {}, cb));
    expect(w?.status, w?.error).toBe(200);
    for (const n of [1, 2, 3]) c.world.runUntil(() => c.rt.get(n)!.stateMachine.get('forged') !== undefined, 5000);
    for (const n of [1, 2, 3]) expect(c.rt.get(n)!.stateMachine.get('forged')).toBeDefined();
  }, 60_000);
});
