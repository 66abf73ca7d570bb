/**
 * Processes on this machine by what their command line names: the tests that check a
 * supervisor left no node behind look for processes still naming its data dir.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of processes whose command line has an argument containing `text`. */
export function processesUsing(text: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').some((a) => a.includes(text))) pids.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** SIGKILL to every process whose command line names `text` (a test's data dir): what a failed test left running. */
export function killProcessesUsing(text: string): void {
  for (const p of processesUsing(text)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}

/**
 * Waits, bounded by `maxMs`, until no process names `text`, and returns the pids still
 * naming it at the end ([] when none). "None" must hold on two reads 200 ms apart: a
 * process in the middle of its exec shows an empty command line for a moment (measured:
 * a forked child reads as its parent's command line, then as empty, then as its own), so
 * one empty read is not proof that nothing is left.
 */
export async function waitUntilNoneUsing(text: string, maxMs: number): Promise<number[]> {
  const end = performance.now() + maxMs;
  let emptyReads = 0;
  for (;;) {
    const left = processesUsing(text);
    emptyReads = left.length === 0 ? emptyReads + 1 : 0;
    if (emptyReads >= 2 || performance.now() >= end) return left;
    await new Promise((r) => setTimeout(r, left.length === 0 ? 200 : 100));
  }
}
