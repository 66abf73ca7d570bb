/**
 * A service catalog that never changes, for tests of service watches: the KV is empty,
 * its index never moves (every watch waits its whole wait), writes are refused, and the
 * registry's key-change listeners are counted (`listeners`), so a test can see a closed
 * watch give its listener back.
 */
import type { KvPort, ListCallback } from '../../daemon/services/registry.ts';
import type { ClientCallback } from '../../daemon/runtime/results.ts';

export class StillKv implements KvPort {
  listeners = 0;
  get(_key: string, _o: { stale: boolean }, cb: ClientCallback): void {
    cb({ status: 404, index: 0 });
  }
  put(_key: string, _v: Uint8Array, _o: { cas?: number }, cb: ClientCallback): void {
    cb({ status: 503, error: 'read-only test KV' });
  }
  del(_key: string, _o: { cas?: number }, cb: ClientCallback): void {
    cb({ status: 503, error: 'read-only test KV' });
  }
  list(_prefix: string, _o: { stale: boolean }, cb: ListCallback): void {
    cb({ status: 200, entries: [] });
  }
  onKeyChange(_key: string, _fn: () => void): () => void {
    this.listeners++;
    let on = true;
    return () => {
      if (on) this.listeners--;
      on = false;
    };
  }
  activeLeadership() {
    return undefined;
  }
}
