/**
 * Durable-log benchmark on real files (FsStorage, real fsync): persist latency and
 * fsyncs per second, with one writer waiting for each persist (no batching possible)
 * and with many concurrent persists (group commit).
 *
 *   npx tsx bench/storage.ts [dir] [--n 2000] [--concurrency 32] [--bytes 128]
 *
 * The directory defaults to a fresh temp dir (on the card in production: pass the
 * data dir's parent to measure the SD card itself).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsStorage } from '../hal/fs-storage.ts';
import { type DurableLog, openDurableLog } from '../hal/storage/index.ts';
import { EntryType } from '../src/wire/messages.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`--${name}: expected a positive integer, got ${process.argv[i + 1]}`);
  return v;
}
const N = arg('n', 2000);
const CONC = arg('concurrency', 32);
const BYTES = arg('bytes', 128);
const given = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : undefined;
const dir = fs.mkdtempSync(path.join(given ?? os.tmpdir(), 'quorumd-bench-'));

function open(st: FsStorage): Promise<DurableLog> {
  return new Promise((res, rej) => openDurableLog(st, {}, (e, v) => (e ? rej(e) : res(v!.log))));
}

async function main(): Promise<void> {
  const st = new FsStorage(dir);
  const log = await open(st);
  const data = new Uint8Array(BYTES).fill(7);
  let index = 0;
  const persistOne = () =>
    new Promise<number>((res, rej) => {
      const t0 = performance.now();
      index++;
      log.persist(
        { hardState: { term: 1, vote: 1, commit: index - 1 }, entries: [{ index, term: 1, type: EntryType.Normal, data }] },
        (e) => (e ? rej(e) : res(performance.now() - t0)),
      );
    });

  // Sequential: each persist waits for the previous one (a lone follower ack).
  const lat: number[] = [];
  const s0 = log.stats();
  let t = performance.now();
  for (let i = 0; i < N / 4; i++) lat.push(await persistOne());
  let secs = (performance.now() - t) / 1000;
  let s1 = log.stats();
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(3);
  console.log(
    `sequential: ${lat.length} persists, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ` +
      `${((s1.syncs - s0.syncs) / secs).toFixed(0)} syncs/s, ${(lat.length / secs).toFixed(0)} persists/s`,
  );

  // Concurrent: CONC persists in flight at any time (a busy leader): group commit.
  const clat: number[] = [];
  t = performance.now();
  const s2 = log.stats();
  let issued = 0;
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    const pump = () => {
      while (inFlight < CONC && issued < N) {
        issued++;
        inFlight++;
        persistOne().then((ms) => {
          clat.push(ms);
          inFlight--;
          if (clat.length === N) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  secs = (performance.now() - t) / 1000;
  s1 = log.stats();
  clat.sort((a, b) => a - b);
  const cp = (p: number) => clat[Math.min(clat.length - 1, Math.floor(p * clat.length))]!.toFixed(3);
  console.log(
    `concurrent(${CONC}): ${N} persists, p50 ${cp(0.5)} ms, p99 ${cp(0.99)} ms, ${((s1.syncs - s2.syncs) / secs).toFixed(0)} syncs/s, ` +
      `${(N / secs).toFixed(0)} persists/s, ${((s1.persists - s2.persists) / (s1.groups - s2.groups)).toFixed(1)} persists per fsync group, ` +
      `${((s1.bytesWritten - s2.bytesWritten) / N).toFixed(0)} bytes written per persist`,
  );
  st.close();
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
