/**
 * Start-up trace points (issue 14, cold start): QUORUMD_TRACE_START=1 makes a node
 * process print one line per step of its start to stderr (a `quorumd dev` node's log),
 *
 *   quorumd start-trace <step> +<ms since the process started> @<epoch ms> cpu <CPU ms so far>
 *
 * from the process start (performance.timeOrigin) through module load, config, links,
 * storage open, the first tick, the first link up and the first leadership. The epoch
 * time lines the processes of a cluster up against each other and against the
 * supervisor's spawn (bench/cold-start.ts reads them). Unset: one property read per
 * step, nothing printed.
 */
import type { EngineRuntimeObserver } from './runtime/engine-node.ts';

const on = process.env.QUORUMD_TRACE_START === '1';
const seen = new Set<string>();

/** Prints `step` (only its first occurrence in this process) when tracing is on. */
export function startMark(step: string): void {
  if (!on || seen.has(step)) return;
  seen.add(step);
  const now = performance.now();
  const cpu = process.cpuUsage();
  process.stderr.write(`quorumd start-trace ${step} +${now.toFixed(1)} @${(performance.timeOrigin + now).toFixed(1)} cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)}\n`);
}

export const startTraceOn = on;

/**
 * `o` with trace points for the runtime's first steps: storage opened and the engine
 * built (booted), its first input (a tick or a message), and the first time it leads.
 * `o` itself when tracing is off.
 */
export function tracedObserver(o: EngineRuntimeObserver): EngineRuntimeObserver {
  if (!on) return o;
  let led = false;
  return {
    ...o,
    booted: (rt) => {
      startMark('booted (storage open, engine built)');
      o.booted?.(rt);
    },
    afterStep: (rt) => {
      startMark('first engine step');
      if (!led && rt.status().role === 'leader') {
        led = true;
        startMark('leader');
      }
      o.afterStep?.(rt);
    },
  };
}
