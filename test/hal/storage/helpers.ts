import type { Storage } from '../../../hal/interfaces.ts';
import { type DurableLog, type DurableLogOptions, type Opened, type PersistBatch, openDurableLog } from '../../../hal/storage/index.ts';
import { EntryType, type Entry } from '../../../src/wire/messages.ts';
import type { PowerLossStorage } from './power-loss-storage.ts';

/** Opens on a storage whose I/O completes synchronously (or is driven by `pump`); throws the open error. */
export function openNow(storage: Storage, opts: DurableLogOptions = {}, pump?: () => void): Opened {
  let out: Opened | undefined;
  let error: Error | null = null;
  let called = 0;
  openDurableLog(storage, opts, (err, v) => {
    called++;
    error = err;
    out = v;
  });
  pump?.();
  if (called !== 1) throw new Error(`open called back ${called} times`);
  if (error) throw error;
  return out!;
}

/** Persists and drives I/O until done; returns the error or null. */
export function persistNow(log: DurableLog, batch: PersistBatch, storage?: PowerLossStorage): Error | null {
  let res: Error | null | undefined;
  log.persist(batch, (err) => {
    res = err;
  });
  if (storage && !storage.auto) storage.runAll();
  if (res === undefined) throw new Error('persist did not call back');
  return res;
}

export function ent(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}
export function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}
/** Entries as comparable strings. */
export function show(es: Entry[]): string[] {
  return es.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString('hex')}`);
}
