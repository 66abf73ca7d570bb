/**
 * node-zookeeper-client decodes server frames inside its socket's 'data' handler
 * (ConnectionManager.onSocketData). A frame it does not expect — a 16-byte reply
 * header arriving while it still waits for the connect answer, which a ZooKeeper
 * server in the middle of a leader election sends now and then, or any garbage
 * from a middlebox — makes its decoder read past the buffer and throw. Thrown from
 * an event handler, that is an uncaught exception: it would take the whole daemon
 * down (the library's own trackers have the report: "node crashes when zookeeper
 * sends an empty message", "exception Index out of range").
 *
 * The guard catches the throw where it happens and treats the connection as
 * broken: it drops what was half-read and destroys the socket, so the library does
 * what it does after any lost connection (fail the pending requests with
 * CONNECTION_LOSS, connect to the next server, resume the session). The engine's
 * requests already retry on CONNECTION_LOSS.
 */
import type { Client } from 'node-zookeeper-client';
import type { EngineLog } from './etcd.ts';

interface ConnectionManagerInternals {
  socket?: { destroy(): void };
  pendingBuffer?: Buffer | null;
  onSocketData?: (buffer: Buffer) => void;
}

/** Wraps this client's frame decoder; returns false when the library's shape is not the one known (then nothing is changed). */
export function guardMalformedFrames(client: Client, log: EngineLog, onDropped?: () => void): boolean {
  const cm = (client as unknown as { connectionManager?: ConnectionManagerInternals }).connectionManager;
  const decode = cm?.onSocketData;
  if (!cm || typeof decode !== 'function') {
    log.warn({}, 'zookeeper: the client library has no ConnectionManager.onSocketData; a malformed server frame would not be caught');
    return false;
  }
  // connect() binds `self.onSocketData` when it opens each socket, so an own
  // property here is what every later socket uses (the library's recursive call for
  // a second frame in one chunk goes through it too).
  cm.onSocketData = function guardedSocketData(this: ConnectionManagerInternals, buffer: Buffer): void {
    try {
      decode.call(this, buffer);
    } catch (err) {
      log.warn(
        { error: String((err as Error)?.message ?? err).slice(0, 200), bytes: buffer.length },
        'zookeeper: the server sent a frame the client cannot decode; dropping the connection (the client reconnects and resumes the session)',
      );
      this.pendingBuffer = null;
      this.socket?.destroy();
      onDropped?.();
    }
  };
  return true;
}
