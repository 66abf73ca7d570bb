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
  const listening = tcpSocketsOn(port).filter((x) => x.state === LISTEN);
  return listening.length > 0 ? listening.reduce((n, x) => n + x.rxQueue, 0) : undefined;
}

/** /proc/net/tcp's state codes (include/net/tcp_states.h). */
export const ESTABLISHED = '01';
export const LISTEN = '0A';

/**
 * The TCP sockets of this network namespace whose local port is `port` (IPv4 and IPv6),
 * with their state (hex code, as /proc/net/tcp writes it) and rx_queue: for a listening
 * socket the accept queue's length, for a connection the bytes received and not read.
 * Empty where /proc/net/tcp cannot be read.
 */
export function tcpSocketsOn(port: number): Array<{ state: string; rxQueue: number }> {
  const out: Array<{ state: string; rxQueue: number }> = [];
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
      if (c.length < 5) continue;
      const local = c[1]!;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
      const rx = parseInt(c[4]!.slice(c[4]!.indexOf(':') + 1), 16);
      if (Number.isFinite(rx)) out.push({ state: c[3]!, rxQueue: rx });
    }
  }
  return out;
}
