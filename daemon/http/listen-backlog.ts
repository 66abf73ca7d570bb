/**
 * How many connections wait in the accept queue of this process's listening TCP socket
 * on `port`: completed by the kernel, not yet accepted by the process. Closing a listener
 * resets every one of them (each client's request sent, never read), so a planned stop
 * closes its listener only once this is 0 (daemon/http/server.ts drain).
 *
 * Linux: /proc/net/tcp and /proc/net/tcp6 list every socket of this network namespace;
 * for a socket in LISTEN state (st 0A) the rx_queue column is the accept queue's length
 * (the kernel's sk_ack_backlog; net/ipv4/tcp_ipv4.c get_tcp4_sock). Returns undefined
 * where that cannot be read (another OS, /proc not mounted, no such listener): the caller
 * then judges by what it accepts.
 */
import { readFileSync } from 'node:fs';

export function acceptQueueLength(port: number): number | undefined {
  let n = 0;
  let found = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    // Bounded: one line per socket of the namespace.
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i]!.trim().split(/\s+/);
      if (c.length < 5 || c[3] !== '0A') continue;
      const local = c[1]!;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
      const rx = parseInt(c[4]!.slice(c[4]!.indexOf(':') + 1), 16);
      if (!Number.isFinite(rx)) continue;
      found = true;
      n += rx;
    }
  }
  return found ? n : undefined;
}
