/**
 * Who said what: Ed25519 keys and signatures, the simulation's stand-in, and the
 * replies a client checks (f + 1 matching from distinct replicas).
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  devEd25519Auths, devKeySeed, ed25519Auth, ed25519PrivateKeyFromSeed, ed25519PublicKeyFromRaw, ed25519PublicKeyRaw, parseEd25519PrivateKey,
  parseEd25519PublicKey, SimulatedKeys,
} from '../../../src/pbft/auth.ts';
import { acceptReplies, decodeReply, encodeReply, signReply, verifyReply, type PbftReply } from '../../../src/pbft/reply.ts';
import { sha256 } from '../../../src/pbft/encoding.ts';

const data = new TextEncoder().encode('PREPARE 3 17');

describe('Ed25519 authentication', () => {
  const auths = devEd25519Auths([1, 2, 3, 4]);
  it('a signature verifies under its signer only, and only for the signed bytes', () => {
    const s = auths.get(2)!.sign(data);
    expect(s.length).toBe(64);
    expect(auths.get(1)!.verify(2, data, s)).toBe(true);
    expect(auths.get(1)!.verify(3, data, s)).toBe(false); // claimed to be from 3
    expect(auths.get(1)!.verify(2, new Uint8Array([...data, 0]), s)).toBe(false);
    const flipped = s.slice();
    flipped[10] = flipped[10]! ^ 1;
    expect(auths.get(1)!.verify(2, data, flipped)).toBe(false);
    expect(auths.get(1)!.verify(2, data, s.subarray(0, 63))).toBe(false);
    expect(auths.get(1)!.verify(9, data, s)).toBe(false); // no key for node 9
    expect(auths.get(1)!.verify(0, data, s)).toBe(false);
  });
  it('is deterministic (a simulation with real keys stays a function of its seed)', () => {
    expect(auths.get(3)!.sign(data)).toEqual(auths.get(3)!.sign(data));
  });
  it('parses PEM (what openssl writes) and base64 raw keys, and names the input on errors', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const pubPem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const k = parseEd25519PrivateKey(pem, '/etc/quorumd/pbft/n1.key');
    const p = parseEd25519PublicKey(pubPem);
    expect(ed25519PublicKeyRaw(k)).toEqual(ed25519PublicKeyRaw(p));
    const seed = devKeySeed('x');
    const fromB64 = parseEd25519PrivateKey(Buffer.from(seed).toString('base64'));
    expect(ed25519PublicKeyRaw(fromB64)).toEqual(ed25519PublicKeyRaw(ed25519PrivateKeyFromSeed(seed)));
    const raw = ed25519PublicKeyRaw(p);
    expect(ed25519PublicKeyRaw(parseEd25519PublicKey(Buffer.from(raw).toString('base64')))).toEqual(raw);
    expect(ed25519PublicKeyRaw(ed25519PublicKeyFromRaw(raw))).toEqual(raw);
    expect(() => parseEd25519PrivateKey('not a key', '/etc/quorumd/pbft/n1.key')).toThrow(/\/etc\/quorumd\/pbft\/n1\.key: not an Ed25519 private key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect(() => parseEd25519PrivateKey(rsa, 'n2.key')).toThrow(/n2\.key: expected an Ed25519 key/);
  });
  it('refuses a configuration whose public key for this node does not match its private key', () => {
    const mine = ed25519PrivateKeyFromSeed(devKeySeed('a'));
    const other = createPublicKey(ed25519PrivateKeyFromSeed(devKeySeed('b')));
    expect(() => ed25519Auth(1, mine, new Map([[1, other]]))).toThrow(/does not belong to its private key/);
    expect(() => ed25519Auth(1, mine, new Map())).toThrow(/no public key for this node/);
  });
});

describe('simulated signatures (tests and the simulator only)', () => {
  it('a node can sign only as itself', () => {
    const keys = new SimulatedKeys([1, 2, 3, 4], 't');
    const liar = keys.auth(4);
    const s = liar.sign(data);
    expect(keys.auth(1).verify(4, data, s)).toBe(true);
    expect(keys.auth(1).verify(2, data, s)).toBe(false);
    expect(keys.auth(1).verify(2, data, new Uint8Array(16))).toBe(false);
    const otherCluster = new SimulatedKeys([1, 2, 3, 4], 'u');
    expect(otherCluster.auth(1).verify(4, data, s)).toBe(false);
  });
});

describe('client replies: f + 1 matching from distinct replicas', () => {
  const auths = new SimulatedKeys([1, 2, 3, 4], 'replies');
  const group = { members: [1, 2, 3, 4], f: 1 };
  const op = new TextEncoder().encode('set a 1');
  const want = { origin: 2, reqNo: 5, opDigest: sha256(op) };
  const reply = (replica: number, result: string, o: Partial<PbftReply> = {}): PbftReply => ({
    ...signReply(auths.auth(replica), { view: 0, origin: 2, reqNo: 5, index: 9, opDigest: want.opDigest, result: new TextEncoder().encode(result), ...o }),
  });
  const v = auths.auth(1);
  it('accepts a result once f + 1 replicas agree on it', () => {
    expect(acceptReplies([reply(1, 'old')], want, group, v).ok).toBe(false);
    const r = acceptReplies([reply(1, 'old'), reply(3, 'old', { view: 2 })], want, group, v);
    expect(r.ok && new TextDecoder().decode(r.result)).toBe('old');
    expect(r.ok && r.replicas).toEqual([1, 3]);
  });
  it('one liar cannot make a client accept: wrong result, forged signer, duplicate replica, other operation', () => {
    const lie = reply(4, 'LIE');
    const forged: PbftReply = { ...reply(4, 'LIE'), replica: 3 }; // claims 3, signed by 4
    const again = reply(4, 'LIE', { view: 1 });
    const otherOp = reply(1, 'LIE', { opDigest: sha256(new Uint8Array([9])) });
    const r = acceptReplies([lie, forged, again, otherOp, reply(1, 'good')], want, group, v);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/2 valid replies \(1 with bad signatures\)/);
    expect(acceptReplies([lie, forged, again, reply(1, 'good'), reply(2, 'good')], want, group, v)).toMatchObject({ ok: true });
  });
  it('agreement on the index matters too', () => {
    expect(acceptReplies([reply(1, 'x', { index: 9 }), reply(2, 'x', { index: 10 })], want, group, v).ok).toBe(false);
  });
  it('encodes for an HTTP header and back; decoding never throws', () => {
    const r = reply(2, 'value');
    const back = decodeReply(encodeReply(r), 16);
    expect(back).toEqual(r);
    expect(typeof back !== 'string' && verifyReply(v, back)).toBe(true);
    expect(decodeReply(encodeReply(r).subarray(0, 20), 16)).toMatch(/reply/);
    expect(decodeReply(new Uint8Array([0xff, 0, 1]), 16)).toMatch(/.+/);
  });
});
