/**
 * A broker's TCP port, bound before the broker's code is loaded.
 *
 * `quorumd dev` binds its embedded broker's port first, writes the nodes' configs with
 * it and starts the nodes, and only then loads aedes and starts the broker on this
 * listener (startBroker's `listening`): the nodes spend their first few hundred
 * milliseconds loading their own code, so loading the broker meanwhile takes its time
 * off the cold start (issue 14) instead of delaying every node by it. A node that
 * connects before the broker is there waits in the queue: its bytes stay in the
 * socket's buffer until the broker reads them. Plain TCP only (a TLS broker binds its
 * own port). Until the broker takes it the port does not keep the process alive.
 */
import net from 'node:net';

export interface EarlyListener {
  /** The bound port (the one asked for, or the one the system picked for 0). */
  readonly port: number;
  readonly host: string;
  readonly server: net.Server;
  /**
   * From now on every connection goes to `handle`, the queued ones first (those that
   * were closed meanwhile are dropped). Once only.
   */
  take(handle: (s: net.Socket) => void): void;
  /** Stops listening and drops the queued connections (when the broker never came). */
  close(): void;
}

/** Binds `host`:`port` (0: any free port) and queues connections until `take`. */
export function listenEarly(host: string, port: number): Promise<EarlyListener> {
  const server = net.createServer({ noDelay: true });
  const queue: net.Socket[] = [];
  const park = (s: net.Socket) => {
    // A client that resets while it waits must not take the process down.
    s.on('error', () => {});
    queue.push(s);
  };
  server.on('connection', park);
  // Not a reason to stay alive by itself until the broker takes it: a caller that fails
  // between binding and starting the broker must not hang on an orphaned port.
  server.unref();
  let taken = false;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        host,
        server,
        take(handle) {
          if (taken) throw new Error('EarlyListener.take: already taken');
          taken = true;
          server.ref();
          server.off('connection', park);
          server.on('connection', handle);
          for (const s of queue.splice(0)) if (!s.destroyed) handle(s);
        },
        close() {
          server.close();
          for (const s of queue.splice(0)) s.destroy();
        },
      });
    });
  });
}
