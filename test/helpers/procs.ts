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
