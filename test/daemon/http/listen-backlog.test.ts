/**
 * acceptQueueLength (daemon/http/listen-backlog.ts): the kernel's count of connections
 * completed but not yet accepted by this process, which a planned stop waits to be 0
 * before it closes its listener (closing resets them). Linux only; elsewhere undefined.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptQueueLength } from '../../../daemon/http/listen-backlog.ts';
import { until } from '../../engines/servers.ts';

let server: Server | undefined;
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe.skipIf(!existsSync('/proc/net/tcp'))('the accept queue of a listener (Linux /proc/net/tcp)', () => {
  it('counts connections the kernel completed while the process stood still, and 0 once they are accepted', async () => {
    let accepted = 0;
    server = createServer(() => accepted++);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    expect(acceptQueueLength(port)).toBe(0);
    for (let i = 0; i < 5; i++) clients.push(connect(port, '127.0.0.1'));
    // The connects go out at the next poll; then this process stands still while the
    // kernel completes the handshakes (bounded wait, read synchronously: nothing is accepted meanwhile).
    await new Promise((r) => setImmediate(r));
    let seen = 0;
    const end = performance.now() + 5000;
    while (performance.now() < end && (seen = acceptQueueLength(port) ?? -1) < 5);
    expect(seen).toBe(5);
    expect(accepted).toBe(0);
    await until('all accepted', () => accepted === 5, 10_000, 5);
    expect(acceptQueueLength(port)).toBe(0);
  });

  it('says undefined for a port nothing here listens on', async () => {
    server = createServer();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    expect(acceptQueueLength(port)).toBeUndefined();
  });
});
