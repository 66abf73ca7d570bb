/**
 * Port ranges for tests that start several servers on consecutive ports
 * (`quorumd dev --base-port B` listens on B+1..B+n).
 *
 * The base is drawn below Linux's ephemeral range (32768..60999 by default,
 * /proc/sys/net/ipv4/ip_local_port_range): a port there can be taken at any
 * moment by an outgoing connection of another test running in parallel, which
 * is how CI once failed with "port 56452 ... is in use" between our probe and
 * the node's listen. Below 32768 only another listener can take a port, and
 * every port of the range is probed before it is handed out.
 */
import { createServer } from 'node:net';

/**
 * Each vitest worker draws from its own slice of 20000..32000 (VITEST_POOL_ID is 1..the
 * number of workers; vitest.config.ts runs several at once): a port probed free by one
 * worker cannot be handed to another before the first binds it. Eight slices of 1500;
 * workers beyond eight share them again (still probed, as before).
 */
const SLICES = 8;
const SLICE = 1500;
const pool = Number(process.env.VITEST_POOL_ID ?? 1);
const LOW = 20_000 + (((Number.isInteger(pool) && pool > 0 ? pool : 1) - 1) % SLICES) * SLICE;
const HIGH = LOW + SLICE; // exclusive; the last slice ends at 32000, clear of the ephemeral range

export function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

/**
 * Ports this process handed out already (single ports and whole ranges): no two servers
 * of one test file get the same one, even when the first is not listening yet when the
 * second is drawn — a probe sees only listeners. (Service discovery's e2e once drew
 * three DNS ports, then a node base whose range took one of them: the node that bound
 * second exited at start, and the scenario met a refused connection.)
 */
const handedOut = new Set<number>();

/**
 * Where to look for a base B whose B+1..B+n lie in this worker's slice: first `RANDOM_DRAWS`
 * random bases (as before: spread over the slice), then every base of the slice once,
 * from a random one on, wrapping: bounded by the slice, and it finds a free range
 * whenever one exists. Random draws alone did not: with a third of the slice handed out
 * (test/helpers/ports.test.ts) 100 draws for 5 free consecutive ports failed in ~10 % of
 * runs (simulated, 4,000 runs).
 */
const RANDOM_DRAWS = 20;
function* bases(n: number): Generator<number> {
  const span = HIGH - LOW - n; // bases LOW..LOW+span-1: the last range ends at HIGH - 1
  for (let i = 0; i < RANDOM_DRAWS; i++) yield LOW + Math.floor(Math.random() * span);
  const from = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) yield LOW + ((from + i) % span);
}

/**
 * One free port below the ephemeral range, for a server a test starts (a node's HTTP
 * listener, a broker, etcd). Not `listen(0)`: that draws from the ephemeral range, where
 * an outgoing connection of a parallel test can take the port before the server binds it
 * (a witness e2e once failed so: the surviving board never listened).
 */
export async function freePort(): Promise<number> {
  return (await freeBasePort(1)) + 1;
}

/** A base B such that B+1..B+n are free now and not handed out before (bounded: the slice, see `bases`). */
export async function freeBasePort(n: number): Promise<number> {
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new RangeError(`freeBasePort: expected 1..100 ports, got ${n}`);
  for (const base of bases(n)) {
    const range = Array.from({ length: n }, (_, k) => base + k + 1);
    if (range.some((p) => handedOut.has(p))) continue;
    const ok = await Promise.all(range.map(portFree));
    if (ok.every(Boolean)) {
      for (const p of range) handedOut.add(p);
      return base;
    }
  }
  throw new Error(`freeBasePort: no ${n} consecutive free ports between ${LOW} and ${HIGH} (every base of the slice tried)`);
}
