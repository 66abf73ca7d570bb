/**
 * A stall of this process's event loop (what SIGSTOP, swapping or an overloaded board do
 * to a node) during which an answer arrives: `stallWhileAnswerArrives(ms)` blocks the
 * main thread for at least `ms` and, meanwhile, has a worker thread send one UDP
 * datagram to the returned socket. The datagram waits in the kernel until the loop
 * polls again — as a follower's acknowledgement or etcd's reply would after a stall.
 *
 * Deterministic: the block lasts until both the time has passed and the worker has
 * reported the datagram sent (bounded: 20 s, then it throws).
 */
import { createSocket, type Socket } from 'node:dgram';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createSocket } = require('node:dgram');
const flag = new Int32Array(workerData.sab);
const sock = createSocket('udp4');
parentPort.on('message', (port) => {
  sock.send(Buffer.from('answer'), port, '127.0.0.1', (err) => {
    Atomics.store(flag, 0, err ? 2 : 1);
  });
});
parentPort.postMessage('ready');
`;

export class Staller {
  private readonly sab = new SharedArrayBuffer(4);
  private readonly flag = new Int32Array(this.sab);
  private worker: Worker | undefined;
  readonly socket: Socket = createSocket('udp4');

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.worker = new Worker(WORKER, { eval: true, workerData: { sab: this.sab } });
    await new Promise<void>((resolve, reject) => {
      this.worker!.once('message', () => resolve());
      this.worker!.once('error', reject);
    });
    return this;
  }

  /** Blocks the event loop for at least `ms`, while the worker sends one datagram to `socket`. */
  stallWhileAnswerArrives(ms: number): void {
    Atomics.store(this.flag, 0, 0);
    this.worker!.postMessage(this.socket.address().port);
    const start = performance.now();
    for (;;) {
      const now = performance.now();
      const sent = Atomics.load(this.flag, 0);
      if (sent === 2) throw new Error('stall: the worker could not send its datagram');
      if (sent === 1 && now - start >= ms) return;
      if (now - start > 20_000) throw new Error('stall: the worker did not send its datagram within 20 s');
    }
  }

  async stop(): Promise<void> {
    this.socket.close();
    await this.worker?.terminate();
  }
}
