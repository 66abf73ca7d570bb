/**
 * Leadership hooks: environment, output in the log, timeout kill, serialized order.
 */
import { describe, expect, it } from 'vitest';
import { HookRunner, type HookLog } from '../../daemon/hooks.ts';

function recorder(): { log: HookLog; lines: Array<{ msg: string; f: Record<string, unknown> }> } {
  const lines: Array<{ msg: string; f: Record<string, unknown> }> = [];
  const rec = (f: Record<string, unknown>, msg: string) => void lines.push({ msg, f });
  return { log: { info: rec, warn: rec, error: rec }, lines };
}

describe('hooks', () => {
  it('runs with QUORUMD_TERM/TOKEN/NODE and logs the output', async () => {
    const { log, lines } = recorder();
    const h = new HookRunner({ onActive: 'echo "up $QUORUMD_EVENT $QUORUMD_TERM $QUORUMD_TOKEN $QUORUMD_NODE"; echo oops >&2', node: 'pi-a', cluster: 'c', log });
    h.fire({ event: 'active', term: 7, token: 42 });
    await h.idle();
    expect(lines.map((l) => l.msg)).toContain('up active 7 42 pi-a');
    expect(lines.find((l) => l.msg === 'oops')?.f.stream).toBe('stderr');
    expect(h.history).toEqual([expect.objectContaining({ event: 'active', code: 0, timedOut: false })]);
  });

  it('kills a hook that overruns its timeout and says so', async () => {
    const { log, lines } = recorder();
    const h = new HookRunner({ onActive: 'sleep 5', timeoutMs: 100, killGraceMs: 100, node: 'n', cluster: 'c', log });
    const t0 = performance.now();
    h.fire({ event: 'active', term: 1, token: 1 });
    await h.idle();
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(h.history[0]).toMatchObject({ timedOut: true });
    expect(lines.some((l) => /timed out/.test(l.msg))).toBe(true);
  });

  it('serializes: inactive waits for a running active; queued events collapse to the latest', async () => {
    const { log, lines } = recorder();
    const h = new HookRunner({ onActive: 'sleep 0.2; echo A$QUORUMD_TERM', onInactive: 'echo I$QUORUMD_TERM', node: 'n', cluster: 'c', log });
    h.fire({ event: 'active', term: 1, token: 1 });
    h.fire({ event: 'inactive', term: 1, token: 1 });
    h.fire({ event: 'active', term: 2, token: 5 });
    h.fire({ event: 'inactive', term: 3, token: 5 });
    await h.idle();
    const out = lines.filter((l) => /^[AI]\d$/.test(l.msg)).map((l) => l.msg);
    expect(out).toEqual(['A1', 'I3']);
  });
});
