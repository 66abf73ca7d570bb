/**
 * `quorumd sim --locks` (and `--process-clocks`) catches the lock clock bug that a
 * fault-injection pass on real processes found (fixed in ad2fb33, engine-node.ts
 * lockNow()/afterStep()), which the simulator could not see before: its clients sent no
 * lock commands, and every process read its board's hardware clock, the same on every
 * board and not restarting with the process.
 *
 * The old rule is planted back through the test-only runtime option plantedLockClock
 * (the offset clamped at 0 and fractional). Each case is a bounded seed search that
 * must hit the violation, and the hitting seed must pass with the real rule (so the
 * rule, not the seed, is what fails):
 *   - with per-process clocks, a failover to an older process jumps the lock clock
 *     ahead: a second client gets a lock while the first still counts on its ttl
 *     (lock-mutual-exclusion);
 *   - with per-process clocks, a failover to a younger process stamps fractional times:
 *     an acquire or renewal answered 400 (lock-bad-request);
 *   - even on the boards' hardware clocks (--locks alone) drift and power cycles make
 *     the old offset fractional now and then (lock-bad-request).
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';

const FAULTS = 'crash,partition,stall';
const PLANTED = { runtime: { plantedLockClock: 'clamped-offset' as const } };

function search(processClocks: boolean, invariant: string, from: number, to: number): number | undefined {
  for (let seed = from; seed <= to; seed++) {
    const cfg = parseSimOptions({ seed, nodes: 3, time: '30s', faults: FAULTS, locks: true, processClocks });
    const r = runEngineSeed(cfg, seed, { ...PLANTED, skipLin: true });
    if (r.violation?.invariant === invariant) return seed;
  }
  return undefined;
}

function realRule(processClocks: boolean, seed: number) {
  const cfg = parseSimOptions({ seed, nodes: 3, time: '30s', faults: FAULTS, locks: true, processClocks });
  return runEngineSeed(cfg, seed);
}

describe('the lock checks catch the old lock clock rule', () => {
  it('per-process clocks, failover to an older process: a second holder inside the first one\'s ttl', () => {
    const seed = search(true, 'lock-mutual-exclusion', 1, 40);
    expect(seed).toBeDefined();
    const r = realRule(true, seed!);
    expect(r.violation).toBeUndefined();
    expect(r.lin).toBe('ok');
    expect(r.locks!.grants).toBeGreaterThan(0);
    expect(r.locks!.renewals).toBeGreaterThan(0);
  });

  it('per-process clocks, failover to a younger process: a lock command stamped with a fraction, answered 400', () => {
    const seed = search(true, 'lock-bad-request', 1, 10);
    expect(seed).toBeDefined();
    expect(realRule(true, seed!).violation).toBeUndefined();
  });

  it('hardware clocks (--locks alone): drift and power cycles make the old offset fractional too', () => {
    const seed = search(false, 'lock-bad-request', 1, 20);
    expect(seed).toBeDefined();
    expect(realRule(false, seed!).violation).toBeUndefined();
  });
});
