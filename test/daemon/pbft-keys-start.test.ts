/**
 * `quorumd start` with engine pbft in-process (issue 17): with pbft.privateKey and
 * pbft.publicKeys the runtime signs with the configured private key (a signature the
 * board's public key verifies and the key derived from the cluster key does not);
 * without them the node warns once at start that keys are derived from the cluster key.
 */
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfigWithPositions, resolveConfig } from '../../daemon/config/load.ts';
import { startNode } from '../../daemon/start.ts';
import { derivedPbftAuth } from '../../daemon/runtime/pbft-host.ts';
import { parseKey } from '../../daemon/config/plain.ts';
import type { PbftAuth } from '../../src/pbft/auth.ts';
import { testTokenFile } from '../helpers/auth.ts';

const KEY = 'cd'.repeat(32);
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

function configText(dir: string, pbft: string): string {
  return `cluster: { name: pk, key: ${KEY} }
engine: pbft
members:
  - { id: 1, name: a }
  - { id: 2, name: b }
  - { id: 3, name: c }
  - { id: 4, name: d }
node: { name: a, dataDir: ${JSON.stringify(join(dir, 'a'))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:1" ], keepaliveSec: 1 }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
${pbft}`;
}

async function start(dir: string, pbft: string) {
  const lines: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
  const file = join(dir, 'a.yaml');
  const { config, locate } = parseConfigWithPositions(configText(dir, pbft), file);
  const n = await startNode(resolveConfig(config, file, locate), { pino: pino({ level: 'warn' }, sink) });
  cleanup.push(() => n.stop());
  return { n, lines, auth: (n.runtime as unknown as { pbftAuth: PbftAuth }).pbftAuth };
}

describe('quorumd start with engine: pbft and key files', () => {
  it('signs with the configured private key; without key files it warns that keys are derived from the cluster key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-pbftkeys-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const pubs: string[] = [];
    let own: ReturnType<typeof generateKeyPairSync> | undefined;
    for (const n of ['a', 'b', 'c', 'd']) {
      const kp = generateKeyPairSync('ed25519');
      if (n === 'a') own = kp;
      writeFileSync(join(dir, `${n}.pub`), kp.publicKey.export({ format: 'pem', type: 'spki' }));
      pubs.push(`    ${n}: ${n}.pub`);
    }
    writeFileSync(join(dir, 'a.key'), own!.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const withKeys = await start(dir, `pbft:\n  privateKey: a.key\n  publicKeys:\n${pubs.join('\n')}\n`);
    const data = new TextEncoder().encode('issue 17');
    const sig = withKeys.auth.sign(data);
    expect(verify(null, data, own!.publicKey, sig)).toBe(true);
    expect(derivedPbftAuth(1, [1, 2, 3, 4], parseKey(KEY)!, 1).verify(1, data, sig)).toBe(false);
    expect(withKeys.lines.join('')).not.toMatch(/derived from the cluster key/);
    await withKeys.n.stop();

    const derived = await start(dir, '');
    expect(derivedPbftAuth(1, [1, 2, 3, 4], parseKey(KEY)!, 1).verify(1, data, derived.auth.sign(data))).toBe(true);
    expect(derived.lines.filter((l) => /derived from the cluster key/.test(l)).length).toBe(1);
  }, 60_000);
});
