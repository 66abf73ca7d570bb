/**
 * A ZooKeeper server (or anything in between) that sends a frame the client library
 * does not expect must not crash the daemon: node-zookeeper-client decodes inside
 * its socket handler and throws out of it. This is what failed a CI run: a reply
 * header (16 bytes) reached the client while it waited for the connect answer,
 * during the ensemble's own leader election.
 *
 * A fake server on 127.0.0.1 answers the first connect with exactly such a frame and
 * the second with a proper connect answer. With the guard the client drops the bad
 * connection, connects again and gets its session; without it the throw escapes
 * (vitest reports it) and the client never connects (the test times out).
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import zk from 'node-zookeeper-client';
import { guardMalformedFrames } from '../../daemon/engines/zk-guard.ts';

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

function frame(payload: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
}

it('a reply header instead of the connect answer: the connection is dropped, the client reconnects and gets a session', async () => {
  let connections = 0;
  const server = net.createServer((sock) => {
    const n = ++connections;
    sock.on('error', () => {});
    sock.once('data', () => {
      if (n === 1) {
        // ReplyHeader: xid, zxid, err — 16 bytes, shorter than any ConnectResponse.
        sock.write(frame(Buffer.alloc(16)));
      } else {
        // ConnectResponse: protocolVersion, timeOut, sessionId, passwd (length-prefixed).
        const p = Buffer.alloc(4 + 4 + 8 + 4 + 16);
        p.writeInt32BE(0, 0);
        p.writeInt32BE(4000, 4);
        p.writeBigInt64BE(0x1234n, 8);
        p.writeInt32BE(16, 16);
        sock.write(frame(p));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => server.close());
  const port = (server.address() as net.AddressInfo).port;

  const warnings: string[] = [];
  const log = { debug() {}, info() {}, error() {}, warn: (_f: Record<string, unknown>, msg: string) => void warnings.push(msg) };
  const c = zk.createClient(`127.0.0.1:${port}`, { sessionTimeout: 4000, spinDelay: 50, retries: 0 });
  cleanup.push(() => c.close());
  expect(guardMalformedFrames(c, log)).toBe(true);
  const connected = once(c, 'connected');
  c.connect();
  await connected;

  expect(connections).toBe(2);
  expect(c.getSessionId().toString('hex')).toBe('0000000000001234');
  expect(warnings).toEqual([expect.stringMatching(/frame the client cannot decode; dropping the connection/)]);
}, 30_000);
