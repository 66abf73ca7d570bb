/**
 * Bounded polling for tests of real processes: calls `f` every `everyMs` until it gives
 * something other than undefined, at most `maxMs` (generous: a loaded machine) and at
 * most 100,000 times; throws naming `what` when it runs out.
 */
export async function until<T>(what: string, f: () => T | undefined, maxMs: number, everyMs = 100): Promise<T> {
  const end = performance.now() + maxMs;
  for (let i = 0; i < 100_000; i++) {
    const v = f();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out (${maxMs} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}
