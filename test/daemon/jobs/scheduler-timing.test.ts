/**
 * When the job scheduler (daemon/jobs/scheduler.ts) asks for a slot, in fake time:
 * once per slot on time; slots its timer woke too late for are logged as missed, not
 * run (node-cron's rule: more than a second late, or after the next slot was due); a
 * clock set hours ahead logs a bounded number of lines; stop() ends the timers. The
 * coordinator's answer itself is tested in coordinator.test.ts; runs in a real node in
 * test/daemon/jobs-run.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobScheduler } from '../../../daemon/jobs/scheduler.ts';
import type { JobsHost } from '../../../daemon/jobs/coordinator.ts';

const T0 = Date.UTC(2026, 11, 3, 18, 0, 0);

function scheduler(cron: string) {
  const lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const rec = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  const asked: string[] = [];
  // Never the active leader: every slot is decided "no" without a claim (stats.notActive).
  const host: JobsHost = {
    activeLeadership: () => {
      asked.push(new Date(Date.now()).toISOString());
      return undefined;
    },
    claim: () => {
      throw new Error('not reached');
    },
    report: () => {},
    record: () => undefined,
    nodeName: (id) => `n${id}`,
  };
  const s = new JobScheduler({
    jobs: [{ name: 'tick', cron, command: 'true', timeoutMs: 1000, timezone: 'UTC', overlap: 'skip' }],
    host,
    node: 'n1',
    cluster: 'c',
    log: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') },
  });
  return { s, lines, asked, missed: () => lines.filter((l) => l.msg.startsWith('job slot missed')).map((l) => l.fields.slot) };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0 + 300);
});
afterEach(() => vi.useRealTimers());

describe('JobScheduler timing', () => {
  it('asks the coordinator once per slot, on the slot', async () => {
    const { s, asked } = scheduler('*/10 * * * * *');
    s.start();
    await vi.advanceTimersByTimeAsync(35_000);
    expect(asked).toEqual(['2026-12-03T18:00:10.000Z', '2026-12-03T18:00:20.000Z', '2026-12-03T18:00:30.000Z']);
    expect(s.coordinator.stats.notActive).toBe(3);
    expect(s.view()[0]!.nextRun).toBe('2026-12-03T18:00:40.000Z');
    await s.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asked).toHaveLength(3);
    expect(s.view()[0]!.nextRun).toBeNull();
  });

  it('a timer that wakes late: slots past the tolerance are logged as missed and not asked for', async () => {
    const { s, asked, missed } = scheduler('* * * * * *');
    s.start();
    await vi.advanceTimersByTimeAsync(1000); // 18:00:01 asked; now 18:00:01.3, the timer for :02 due in 0.7 s
    // The process stalls 3.5 s (a busy board): the wall clock moves on, no timer runs.
    vi.setSystemTime(Date.now() + 3500);
    await vi.advanceTimersByTimeAsync(700);
    // The timer for :02 woke at 18:00:05.5: :02, :03 and :04 (a full second late, when :05 is due) are missed; :05 is asked for.
    expect(missed()).toEqual(['2026-12-03T18:00:02.000Z', '2026-12-03T18:00:03.000Z', '2026-12-03T18:00:04.000Z']);
    expect(asked.map((a) => a.slice(17, 19))).toEqual(['01', '05']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(asked.map((a) => a.slice(17, 19))).toEqual(['01', '05', '06']);
    await s.stop();
  });

  it('a clock set hours ahead logs a bounded number of lines and goes on with the next slot', async () => {
    const { s, lines, asked } = scheduler('* * * * * *');
    s.start();
    await vi.advanceTimersByTimeAsync(1000);
    vi.setSystemTime(Date.now() + 3 * 3_600_000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines.filter((l) => l.level === 'warn').length).toBeLessThanOrEqual(21);
    expect(lines.some((l) => l.msg.startsWith('job slots missed from this slot until now'))).toBe(true);
    const n = asked.length;
    await vi.advanceTimersByTimeAsync(2000);
    expect(asked.length).toBe(n + 2);
    await s.stop();
  });

  it('a clock set back: nothing fires until the wall clock reaches the awaited slot again', async () => {
    const { s, asked } = scheduler('0 * * * * *'); // every minute
    s.start();
    vi.setSystemTime(T0 - 3_600_000); // an hour back
    await vi.advanceTimersByTimeAsync(120_000);
    // The timer (set for 18:01:00 when the clock read 18:00:00.3) fired after its 59.7 s; the slot was an hour ahead then: it waits for it.
    expect(asked).toEqual([]);
    await s.stop();
  });
});
