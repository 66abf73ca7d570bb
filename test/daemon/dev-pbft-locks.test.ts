/**
 * Issue 17, locks under pbft: `quorumd dev --engine pbft --byzantine-node 4` (wrong-reply:
 * the liar signs wrong results). `quorumd lock acquire --pbft` (the CLI's code path and
 * the real CLI) gets a fencing token that f + 1 replicas signed; a second owner is
 * refused with the holder f + 1 replicas agree on; renew and release through the
 * embeddable client; after the release the second owner gets a larger token. A single
 * node's lock answer says it is that node's word. Waits are bounded.
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { PbftClient } from '../../daemon/client/pbft.ts';
import { lockPbft } from '../../daemon/client/commands.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { capture, runCli as cli } from '../helpers/capture.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  const dir = dev?.dir;
  await dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('quorumd dev --engine pbft with a lying node: locks through the f + 1 client', () => {
  it('acquire gets a token f + 1 signed; a second owner is refused; renew, release, then the second owner gets a larger token', async () => {
    const base = await freeBasePort(4);
    dev = await startDev({ nodes: 4, engine: 'pbft', byzantineNode: 4, byzantineMode: 'wrong-reply', basePort: base, handleSignals: false, out: () => {}, progress: () => {}, readyTimeoutMs: 60_000 });
    const token = readFileSync(dev.tokenFile, 'utf8').trim();
    const urls = dev.nodes.map((n) => n.url);
    const cfg = dev.nodes[0]!.configFile;

    // The real CLI, as a user runs it.
    const first = await cli(['lock', 'acquire', 'door', '--ttl', '30s', '--owner', 'alice', '--pbft', cfg, '--node', urls.join(',')], token);
    expect(first.code, first.err).toBe(0);
    const m = /^token=(\d+) lease=([A-Za-z0-9_-]{22,}) ttlMs=30000\n$/.exec(first.out);
    expect(m, first.out).not.toBeNull();
    const aliceToken = Number(m![1]);
    const aliceLease = m![2]!;

    // The CLI's code path for a second owner: refused, exit 1, the holder named.
    process.env.QUORUMD_API_TOKEN = token;
    try {
      const bob = capture();
      expect(await lockPbft(urls.join(','), cfg, { kind: 'acquire', name: 'door', ttl: '30s', owner: 'bob' }, { timeoutMs: 30_000 }, bob.io)).toBe(1);
      expect(bob.err).toMatch(/lock "door" is held by "alice" \(f \+ 1 replicas agree: /);
    } finally {
      delete process.env.QUORUMD_API_TOKEN;
    }

    // The embeddable client, asking the liar first for some requests: f + 1 honest replicas decide.
    const client = PbftClient.fromConfig(cfg, [urls[0]!, urls[3]!, urls[1]!, urls[2]!], { token, timeoutMs: 30_000 });
    const renew = await client.lockRenew('door', aliceLease);
    expect(renew.status, renew.error).toBe(200);
    expect(renew.token).toBe(aliceToken);
    expect(renew.replicas).not.toContain(4);
    const wrong = await client.lockRelease('door', 'x'.repeat(22));
    expect(wrong.status).toBe(409);
    const rel = await client.lockRelease('door', aliceLease);
    expect(rel.status, rel.error).toBe(200);
    const bob = await client.lockAcquire('door', 'bob', 10_000);
    expect(bob.status, bob.error).toBe(200);
    expect(bob.token).toBeGreaterThan(aliceToken);
    expect(bob.replicas).not.toContain(4);

    // One node's answer to a plain lock request says it is one node's word.
    const one = await call(urls[1]!, 'POST', '/v1/locks/gate?ttl=5s&owner=carol', { token, timeoutMs: 30_000 });
    expect(one.status).toBe(200);
    expect(one.headers['x-quorumd-trust']).toBe('one-node; f=1; need=2');
    expect(one.headers['x-quorumd-reply']).toBeDefined();
    await dev.stop();
    rmSync(dev.dir, { recursive: true, force: true });
    dev = undefined;
  }, 240_000);
});
