/**
 * node-cron, loaded when a job's cron expression is first checked or scheduled.
 *
 * A node with no `jobs:` (a witness, every bully and pbft node, any cluster that runs
 * no scheduled commands) never needs it, yet a static import made each node load and
 * keep its two modules (~70 KB of source text in the heap, plus their objects; issue
 * 14: RSS per node). Its call sites (zod's refinement of the `jobs:` section, the
 * scheduler's constructor) are synchronous, so it comes through a CommonJS require
 * (node-cron ships a CommonJS build beside its ES module build, with the same
 * functions and messages); only this copy is ever loaded.
 */
import { createRequire } from 'node:module';

type NodeCron = typeof import('node-cron');

let mod: NodeCron | undefined;

/** The node-cron module, required on the first call. */
export function nodeCron(): NodeCron {
  mod ??= createRequire(import.meta.url)('node-cron') as NodeCron;
  return mod;
}

/**
 * Why `expr` must not be handed to node-cron, or undefined. node-cron expands a range
 * into an array of its values before it checks them against the field: "1-10000000"
 * in the minute field took 19 s and 2 GB to be refused, "0 0 1-99999999 * *" 44 s
 * and 4.2 GB (a board would be OOM-killed by a typo in `quorumd config validate`, or
 * in `quorumd start`). No cron field has a value of more than two digits, so a range
 * with a longer bound is refused here, before node-cron sees it.
 */
export function cronRangeProblem(expr: string): string | undefined {
  for (const m of expr.matchAll(/(\d+)\s*-\s*(\d+)/g)) {
    if (m[1]!.length > 2 || m[2]!.length > 2) {
      return `the range ${m[0].length > 30 ? `${m[0].slice(0, 30)}…` : m[0]} is out of every field's bounds (seconds and minutes 0-59, hours 0-23, days 1-31, months 1-12, weekdays 0-7)`;
    }
  }
  return undefined;
}
