/**
 * Issue 17's dev acceptance: `quorumd dev --engine pbft --byzantine-node 4` (wrong-reply:
 * the liar signs wrong results and lies to its own clients). KV through the f + 1 client
 * (the code `quorumd kv --pbft` runs, and the embeddable PbftClient) stays correct, while
 * one node's answer — the liar's — is wrong, and says that it is one node's word.
 *
 * In about 1 of 10 starts on a loaded machine a four-node pbft cluster with a liar did
 * not settle within 60 s (one replica alone in a higher view); complaints before a view
 * change and the 4000 ms board timeout fixed it (10 of 10 at load 27–31), so it runs by
 * default. The waits are bounded; the checks are not weakened.
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { PbftClient, PbftClientError } from '../../daemon/client/pbft.ts';
import { kvPbft } from '../../daemon/client/commands.ts';
import { decodeReply } from '../../src/pbft/reply.ts';
import { decodeResult } from '../../daemon/runtime/pbft-host.ts';
import { LIE_PREFIX } from '../../src/pbft/byzantine.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { capture, runCli } from '../helpers/capture.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  const dir = dev?.dir;
  await dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('quorumd dev --engine pbft with a lying node: the f + 1 client', () => {
  it('KV through the f + 1 client is right; the liar\'s own answer is wrong and says it is one node\'s word', async () => {
    const base = await freeBasePort(4);
    let printed = '';
    dev = await startDev({ nodes: 4, engine: 'pbft', byzantineNode: 4, byzantineMode: 'wrong-reply', basePort: base, handleSignals: false, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 60_000 });
    // The guide shows the f + 1 client.
    expect(printed).toContain(`kv get greeting --pbft ${dev.dir}/n1.yaml --node ${dev.nodes.map((n) => n.url).join(',')}`);
    const token = readFileSync(dev.tokenFile, 'utf8').trim();
    const urls = dev.nodes.map((n) => n.url);
    const liar = dev.nodes[3]!.url;
    const cfg = dev.nodes[0]!.configFile;

    // The CLI's code path (`quorumd kv put/get --pbft <config> --node <all four>`).
    process.env.QUORUMD_API_TOKEN = token;
    try {
      const put = capture();
      expect(await kvPbft(urls.join(','), cfg, { kind: 'put', key: 'k', value: 'v' }, { timeoutMs: 30_000 }, put.io), put.err).toBe(0);
      expect(put.out).toMatch(/^index=\d+\n$/);
      const get = capture();
      expect(await kvPbft(urls.join(','), cfg, { kind: 'get', key: 'k' }, { timeoutMs: 30_000 }, get.io), get.err).toBe(0);
      expect(get.out).toBe('v');
    } finally {
      delete process.env.QUORUMD_API_TOKEN;
    }

    // The real CLI, as a user runs it (a child process; async: the dev nodes live in this process's broker).
    const cli = await runCli(['kv', 'get', 'k', '--pbft', cfg, '--node', urls.join(',')], token);
    expect(cli.code, cli.err).toBe(0);
    expect(cli.out).toBe('v');

    // The embeddable client, asking the liar first (request 1 goes to nodes[1]).
    const client = PbftClient.fromConfig(cfg, [urls[0]!, liar, urls[1]!, urls[2]!], { token, timeoutMs: 30_000 });
    const w = await client.put('k2', 'v2');
    expect(w.status).toBe(200);
    expect(w.replicas).not.toContain(4);
    expect(w.replicas.length).toBeGreaterThanOrEqual(2);
    const r = await client.get('k2');
    expect(new TextDecoder().decode(r.value)).toBe('v2');
    expect(r.replicas).not.toContain(4);

    // One node's word: the liar's own answer to an ordered read is wrong, and says so.
    const one = await call(liar, 'GET', `/v1/kv/k2?client=${'ab'.repeat(16)}&seq=1`, { token, timeoutMs: 30_000 });
    expect(one.status).toBe(200);
    expect(one.body.toString()).toBe(`${LIE_PREFIX}v2`);
    expect(one.headers['x-quorumd-trust']).toBe('one-node; f=1; need=2');
    const signed = decodeReply(new Uint8Array(Buffer.from(String(one.headers['x-quorumd-reply']), 'base64')), 64);
    if (typeof signed === 'string') throw new Error(signed);
    expect(signed.replica).toBe(4);
    expect(decodeResult(signed.result)).toBeInstanceOf(Error); // its signed result is not the honest one
    // An honest node's answer carries the same headers and the right value.
    const honest = await call(urls[0]!, 'GET', `/v1/kv/k2?client=${'cd'.repeat(16)}&seq=1`, { token, timeoutMs: 30_000 });
    expect(honest.body.toString()).toBe('v2');
    expect(honest.headers['x-quorumd-trust']).toBe('one-node; f=1; need=2');
    expect(honest.headers['x-quorumd-request']).toMatch(/^1\/\d+$/);
    // A plain read (no client id) is flagged too.
    expect((await call(urls[1]!, 'GET', '/v1/kv/k2', { token, timeoutMs: 30_000 })).headers['x-quorumd-trust']).toBe('one-node; f=1; need=2');

    // Asking only the liar and one honest node: two replies that disagree, no f + 1 — a clear error naming both.
    const two = PbftClient.fromConfig(cfg, [liar, urls[0]!], { token, timeoutMs: 5000 });
    const e = await two.get('k2').then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(PbftClientError);
    const msg = (e as Error).message;
    expect(msg).toMatch(/no f \+ 1 = 2 matching signed replies/);
    expect(msg).toContain(`${liar}: replica 4 signed an undecodable result`);
    expect(msg).toContain(`${urls[0]}: replica 1 signed status 200`);
    expect(msg).toContain('replies disagree');
    await dev.stop();
    rmSync(dev.dir, { recursive: true, force: true });
    dev = undefined;
  }, 180_000);
});
