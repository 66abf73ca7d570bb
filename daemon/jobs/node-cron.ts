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
