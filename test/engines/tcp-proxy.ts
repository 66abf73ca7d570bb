/**
 * A TCP proxy on 127.0.0.1 that a test controls, to cut one client off from a service
 * the way a pulled cable does: `cut()` black-holes every connection (bytes in either
 * direction are dropped; sockets stay open, so the client notices nothing but
 * silence) and holds new connections the same way; `heal()` closes every connection
 * made before (their streams lost bytes and cannot continue) and forwards again.
 * Several targets (one per server of an ensemble): one proxy port each.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private isCut = false;
  port = 0;
  /** Bytes forwarded (both ways), and bytes dropped while cut. */
  forwarded = 0;
  dropped = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  async start(): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get cutNow(): boolean {
    return this.isCut;
  }

  private accept(client: Socket): void {
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    client.on('data', (d) => {
      if (this.isCut || !pair.upstream) {
        this.dropped += d.length;
        return;
      }
      this.forwarded += d.length;
      pair.upstream.write(d);
    });
    if (this.isCut) return; // held: accepted, never connected through
    this.connectUp(pair);
  }

  private connectUp(pair: Pair): void {
    const up = connect(this.targetPort, this.targetHost);
    pair.upstream = up;
    up.on('error', () => pair.client.destroy());
    up.on('close', () => pair.client.destroy());
    up.on('data', (d) => {
      if (this.isCut) {
        this.dropped += d.length;
        return;
      }
      this.forwarded += d.length;
      pair.client.write(d);
    });
    // Bytes the client sent before the upstream connected are lost: the client's
    // protocol starts with its own write, which arrives after 'connect' here only if
    // we pause reading until then.
    pair.client.pause();
    up.once('connect', () => pair.client.resume());
  }

  /** Black-hole everything from now on. */
  cut(): void {
    this.isCut = true;
  }

  /** Close every connection (they lost bytes while cut) and forward new ones again. */
  heal(): void {
    this.isCut = false;
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
  }

  /** Close every connection now (a reset, not a black hole), keep forwarding new ones. */
  reset(): void {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
