/**
 * pbft.privateKey and pbft.publicKeys (issue 17): both or neither, every member named
 * once, files read and parsed at load with errors naming the key and the file, the
 * private key owner-only like the cluster key, and this board's public key must be its
 * private key's.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { good, problems } from './helpers.ts';
import { ConfigError, loadConfigFile } from '../../../daemon/config/load.ts';
import { ed25519PublicKeyRaw } from '../../../src/pbft/auth.ts';

const four = good.replace('{ id: 3, name: c }', '{ id: 3, name: c }\n  - { id: 4, name: d }');
const NAMES = ['a', 'b', 'c', 'd'];
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A directory with a key pair per member (a.key, a.pub, ...) and a config of node a naming them. */
function keyDir(): { dir: string; pubs: Map<string, KeyObject>; write: (pbft: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'qpbftkeys-'));
  dirs.push(dir);
  const pubs = new Map<string, KeyObject>();
  for (const n of NAMES) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, `${n}.key`), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    writeFileSync(join(dir, `${n}.pub`), publicKey.export({ format: 'pem', type: 'spki' }));
    pubs.set(n, publicKey);
  }
  let i = 0;
  const write = (pbft: string) => {
    const f = join(dir, `q${i++}.yaml`);
    writeFileSync(f, `${four}engine: pbft\npbft:\n${pbft}`, { mode: 0o600 });
    return f;
  };
  return { dir, pubs, write };
}

const allPubs = (names = NAMES) => `  publicKeys:\n${names.map((n) => `    ${n}: ${n}.pub\n`).join('')}`;

function loadProblems(file: string): Array<{ key: string; message: string }> {
  try {
    loadConfigFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('config: pbft key files', () => {
  it('loads this board\'s private key and every member\'s public key, by member id (relative to the config)', () => {
    const k = keyDir();
    const rc = loadConfigFile(k.write(`  privateKey: a.key\n${allPubs()}`));
    expect(rc.pbftKeys).toBeDefined();
    expect([...rc.pbftKeys!.publicKeys.keys()].sort()).toEqual([1, 2, 3, 4]);
    NAMES.forEach((n, i) => expect(ed25519PublicKeyRaw(rc.pbftKeys!.publicKeys.get(i + 1)!)).toEqual(ed25519PublicKeyRaw(k.pubs.get(n)!)));
    expect(ed25519PublicKeyRaw(rc.pbftKeys!.privateKey)).toEqual(ed25519PublicKeyRaw(k.pubs.get('a')!));
    // Without the keys: none (the runtime derives them from the cluster key).
    expect(loadConfigFile(k.write('  tickMs: 10\n')).pbftKeys).toBeUndefined();
  });

  it('only one of the two keys is refused, naming the other', () => {
    expect(problems(four + 'engine: pbft\npbft:\n  privateKey: a.key\n').find((x) => x.key === 'pbft.privateKey')?.message).toMatch(/expected pbft\.publicKeys too/);
    expect(problems(four + 'engine: pbft\npbft:\n' + allPubs()).find((x) => x.key === 'pbft.publicKeys')?.message).toMatch(/expected pbft\.privateKey too/);
  });

  it('a member without a public key and a name that is no member are refused', () => {
    expect(problems(four + 'engine: pbft\npbft:\n  privateKey: a.key\n' + allPubs(['a', 'b', 'c'])).find((x) => x.key === 'pbft.publicKeys')?.message).toMatch(/public key file for every member; missing: d/);
    expect(problems(four + 'engine: pbft\npbft:\n  privateKey: a.key\n' + allPubs([...NAMES, 'zed'])).find((x) => x.key === 'pbft.publicKeys.zed')?.message).toMatch(/expected a member name \(a, b, c, d\), got "zed"/);
  });

  it('the keys under another engine are refused', () => {
    expect(problems(good + 'pbft:\n  privateKey: a.key\n').find((x) => x.key === 'pbft.privateKey')?.message).toMatch(/only for engine pbft; this config runs engine raft/);
  });

  it('a missing, unreadable or garbage key file is refused, naming the key and the file', () => {
    const k = keyDir();
    writeFileSync(join(k.dir, 'junk.pub'), 'not a key at all\n');
    const ps = loadProblems(k.write(`  privateKey: nothere.key\n${allPubs().replace('b.pub', 'junk.pub').replace('c.pub', 'gone.pub')}`));
    expect(ps.find((p) => p.key === 'pbft.privateKey')?.message).toMatch(/nothere\.key does not exist/);
    expect(ps.find((p) => p.key === 'pbft.publicKeys.b')?.message).toMatch(/junk\.pub: (not an Ed25519 public key|expected PEM or base64 text)/);
    expect(ps.find((p) => p.key === 'pbft.publicKeys.c')?.message).toMatch(/expected a readable public key file: \S+gone\.pub/);
    writeFileSync(join(k.dir, 'junk.key'), 'AAAA\n', { mode: 0o600 });
    expect(loadProblems(k.write(`  privateKey: junk.key\n${allPubs()}`)).find((p) => p.key === 'pbft.privateKey')?.message).toMatch(/junk\.key: not an Ed25519 private key/);
  });

  it('a private key file that group or others may read is refused, as the cluster key', () => {
    const k = keyDir();
    chmodSync(join(k.dir, 'a.key'), 0o640);
    expect(loadProblems(k.write(`  privateKey: a.key\n${allPubs()}`)).find((p) => p.key === 'pbft.privateKey')?.message).toMatch(/a\.key holds a secret but its group may access it.*chmod 600/);
  });

  it('this board\'s public key that is not its private key\'s is refused', () => {
    const k = keyDir();
    const ps = loadProblems(k.write(`  privateKey: a.key\n${allPubs().replace('a: a.pub', 'a: b.pub')}`));
    expect(ps.find((p) => p.key === 'pbft.publicKeys.a')?.message).toMatch(/expected the public key of this board's private key \(\S+a\.key\); \S+b\.pub holds another key/);
  });
});
