import { createSocket } from 'node:dgram';

/**
 * Sends one datagram to 127.0.0.1:`port` from a fresh socket (bound to `from` when
 * given: 127.0.0.2 and up are other clients on loopback) and resolves with the first
 * datagram that comes back, or undefined after `ms`.
 */
export function udpAsk(port: number, msg: Buffer, ms = 3000, from?: string): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, ms);
    s.once('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.bind(0, from, () => s.send(msg, port, '127.0.0.1'));
  });
}
