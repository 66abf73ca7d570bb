/**
 * When the job scheduler (daemon/jobs/scheduler.ts) asks for a slot, in fake time:
 * once per slot on time; slots its timer woke too late for in a busy process are
 * logged as missed, not run (node-cron's rule: more than a second late, or after the
 * next slot was due); steps of the wall clock (NTP, `date -s`): forward, the newest
 * skipped slot runs once; back, the timer aims at the first slot after the new time,
 * never at or before the newest granted one; stop() ends the timers.
 *
 * The fake clock: vitest's fake Date is the wall clock and moves with the fake timers;
 * `step(ms)` moves the wall clock alone (what a step does on a board), and the
 * monotonic clock given to the scheduler is the wall clock minus every step so far. The
 * coordinator's answer itself is tested in coordinator.test.ts; runs in a real node in
 * test/daemon/jobs-run.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobScheduler } from '../../../daemon/jobs/scheduler.ts';
import type { JobsHost } from '../../../daemon/jobs/coordinator.ts';
import { HELD_RECHECK_MS } from '../../../daemon/jobs/scheduler.ts';
import type { JobRecord } from '../../../src/kv/index.ts';

const T0 = Date.UTC(2026, 11, 3, 18, 0, 0);

let stepped = 0;
/** A step of the wall clock: the monotonic clock (and the timers on it) does not move. */
function step(ms: number): void {
  vi.setSystemTime(Date.now() + ms);
  stepped += ms;
}

function scheduler(cron: string, granted?: () => number | undefined, record?: () => JobRecord | undefined) {
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
    record: (job) => {
      if (record) return record();
      const slot = granted?.();
      return slot === undefined ? undefined : { name: job, claim: { index: 7, job, slot, node: 2, term: 3, token: 7 }, result: null };
    },
    nodeName: (id) => `n${id}`,
  };
  const s = new JobScheduler({
    jobs: [{ name: 'tick', cron, command: 'true', timeoutMs: 1000, timezone: 'UTC', overlap: 'skip' }],
    host,
    node: 'n1',
    cluster: 'c',
    log: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') },
    clock: { wallMs: () => Date.now(), monotonicMs: () => Date.now() - stepped },
  });
  /** The slots the coordinator was asked about (their ISO time). */
  const slots: string[] = [];
  const shouldRun = s.coordinator.shouldRun.bind(s.coordinator);
  s.coordinator.shouldRun = (key: string) => {
    slots.push(key.slice(key.indexOf(':') + 1));
    return shouldRun(key);
  };
  return { s, lines, asked, slots, missed: () => lines.filter((l) => l.msg.startsWith('job slot missed')).map((l) => l.fields.slot) };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0 + 300);
  stepped = 0;
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

  it('a clock set two hours ahead: the newest skipped slot runs once, one line says so, then the next slots as scheduled', async () => {
    const { s, lines, slots } = scheduler('* * * * * *');
    s.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(slots).toEqual(['2026-12-03T18:00:01.000Z']);
    step(2 * 3_600_000 + 500);
    await vi.advanceTimersByTimeAsync(1000);
    // 18:00:02 .. 20:00:02 were due (the timer woke at 20:00:02.5): one of them, the newest, is asked for, once.
    expect(slots).toEqual(['2026-12-03T18:00:01.000Z', '2026-12-03T20:00:02.000Z']);
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toContain('the wall clock stepped forward 7201 s');
    expect(warns[0]!.fields).toMatchObject({ from: '2026-12-03T18:00:02.000Z', until: '2026-12-03T20:00:02.000Z' });
    await vi.advanceTimersByTimeAsync(2000);
    expect(slots.slice(2)).toEqual(['2026-12-03T20:00:03.000Z', '2026-12-03T20:00:04.000Z']);
    await s.stop();
  });

  it('a clock stepped more than 3 h ahead (a board that booted with an old time): nothing it skipped runs, one line says so', async () => {
    const { s, lines, slots } = scheduler('0 */5 * * * *'); // every 5 minutes
    s.start();
    await vi.advanceTimersByTimeAsync(60_000);
    step(2 * 86_400_000 + 30_000); // NTP's first sync: two days and 30 s on
    await vi.advanceTimersByTimeAsync(60_000);
    expect(slots).toEqual([]);
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toContain('the wall clock stepped forward 172830 s, more than 3 h: taken as the correction of a wrong clock');
    expect(s.view()[0]!.nextRun).toBe('2026-12-05T18:05:00.000Z');
    await vi.advanceTimersByTimeAsync(4 * 60_000);
    expect(slots).toEqual(['2026-12-05T18:05:00.000Z']);
    await s.stop();
  });

  it('a step forward of 10 s over a minute slot runs that slot, once, when the timer wakes', async () => {
    const { s, slots, lines } = scheduler('0 * * * * *'); // every minute
    s.start();
    await vi.advanceTimersByTimeAsync(50_000); // 18:00:50.3; the timer for 18:01:00 is due in 9.7 s
    step(10_000); // NTP: 18:01:00.3 now
    await vi.advanceTimersByTimeAsync(9_700); // the timer wakes at 18:01:10.3
    expect(slots).toEqual(['2026-12-03T18:01:00.000Z']);
    expect(lines.some((l) => l.msg.includes('the wall clock stepped forward 10 s past the job\'s slot: it is due now, 10 s late (the active leader runs it)'))).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(slots).toEqual(['2026-12-03T18:01:00.000Z', '2026-12-03T18:02:00.000Z']);
    await s.stop();
  });

  it('a daily job whose slot a step of an hour skipped runs it once, within a minute of the step', async () => {
    const { s, slots } = scheduler('0 30 18 * * *'); // 18:30 every day
    s.start();
    await vi.advanceTimersByTimeAsync(20 * 60_000); // 18:20:00.3
    step(3_600_000); // 19:20:00.3: 18:30 was skipped
    await vi.advanceTimersByTimeAsync(60_000);
    expect(slots).toEqual(['2026-12-03T18:30:00.000Z']);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(slots).toEqual(['2026-12-03T18:30:00.000Z']); // the next is tomorrow's
    expect(s.view()[0]!.nextRun).toBe('2026-12-04T18:30:00.000Z');
    await s.stop();
  });

  it('a clock set back: the timer aims at the first slot after the new time', async () => {
    const { s, slots, lines } = scheduler('0 * * * * *'); // every minute
    s.start();
    step(-3_600_000); // an hour back: 17:00:00.3
    await vi.advanceTimersByTimeAsync(120_000);
    // The timer (set for 18:01:00 when the clock read 18:00:00.3) woke after its 59.7 s at
    // 17:01:00.0: the slot it waited for is an hour ahead; 17:01:00 is the first after now.
    expect(slots).toEqual(['2026-12-03T17:01:00.000Z', '2026-12-03T17:02:00.000Z']);
    expect(lines.some((l) => l.msg.startsWith('the wall clock was set back 3600 s'))).toBe(true);
    await s.stop();
  });

  it('a clock set ten years ahead for a moment and then corrected does not stop the job', async () => {
    const TEN_YEARS = 3652 * 86_400_000;
    const { s, slots } = scheduler('*/10 * * * * *');
    s.start();
    await vi.advanceTimersByTimeAsync(10_000); // 18:00:10 asked
    step(TEN_YEARS); // a bad NTP answer
    await vi.advanceTimersByTimeAsync(10_000); // the timer woke at 2036-12-01T18:00:20: on a slot, but after a step of years nothing runs
    expect(slots).toEqual(['2026-12-03T18:00:10.000Z']);
    step(-TEN_YEARS); // corrected at 18:00:20.3 (real time), before the next slot of the wrong time
    await vi.advanceTimersByTimeAsync(30_000);
    // The slots of the real time again, from the first after the correction; none of 2036.
    expect(slots).toEqual(['2026-12-03T18:00:10.000Z', '2026-12-03T18:00:30.000Z', '2026-12-03T18:00:40.000Z', '2026-12-03T18:00:50.000Z']);
    await s.stop();
  });

  it('a ten-year step noticed between two slots and corrected within a minute of that claims nothing', async () => {
    // A step is noticed when the job's timer wakes: at a slot, at the wake each minute
    // that looks at the clock, or at a wake a busy process made late. Noticed between
    // slots, the next slot of the wrong time can be seconds away, not a period: it must
    // not be asked for if the clock is corrected within a minute (a period, for a job
    // more often than that) of the notice.
    const TEN_YEARS = 3652 * 86_400_000;
    const { s, slots, lines } = scheduler('0 */2 * * * *');
    await vi.advanceTimersByTimeAsync(30_000);
    s.start(); // 18:00:30.3; the timer wakes at 18:01:30.3 to look at the clock
    await vi.advanceTimersByTimeAsync(30_000);
    step(TEN_YEARS); // 18:01:00.3: a bad step
    await vi.advanceTimersByTimeAsync(30_000); // noticed at 2036-12-02T18:01:30.3; its 18:02:00 is 29.7 s away
    const warn = lines.find((l) => l.msg.includes('taken as the correction of a wrong clock'));
    expect(warn?.msg).toContain('the next slot is 2036-12-02T18:04:00.000Z');
    await vi.advanceTimersByTimeAsync(40_000);
    step(-TEN_YEARS); // corrected at 18:02:10.3, 40 s after the notice
    await vi.advanceTimersByTimeAsync(240_000);
    expect(slots.filter((x) => x.startsWith('2036'))).toEqual([]);
    expect(slots).toEqual(['2026-12-03T18:04:00.000Z', '2026-12-03T18:06:00.000Z']);
    expect(lines.some((l) => l.msg.startsWith('the wall clock was set back 315532800 s'))).toBe(true);
    await s.stop();
  });

  it('a clock set back never aims at or before the newest slot granted in the cluster', async () => {
    let granted: number | undefined = T0 + 50_000; // 18:00:50 ran (claimed) already
    const { s, slots, lines } = scheduler('*/10 * * * * *', () => granted);
    s.start();
    await vi.advanceTimersByTimeAsync(4_700); // 18:00:05
    step(-30_000); // 17:59:35: 17:59:40 .. 18:00:50 would come again
    await vi.advanceTimersByTimeAsync(6_000); // the timer for 18:00:10 woke at 17:59:40
    expect(slots).toEqual([]);
    expect(lines.find((l) => l.msg.startsWith('the wall clock was set back 30 s'))?.msg).toContain(
      "the job's next slot is 2026-12-03T18:01:00.000Z (the first after 2026-12-03T18:00:50.000Z, the newest slot granted in the cluster: no slot runs twice)",
    );
    // What `quorumd jobs` shows: not 17:59:50 (by the clock), which would be refused.
    expect(s.view()[0]!.nextRun).toBe('2026-12-03T18:01:00.000Z');
    await vi.advanceTimersByTimeAsync(75_000); // 18:00:56
    expect(slots).toEqual([]); // 18:00:10 .. 18:00:50 were not asked for again
    await vi.advanceTimersByTimeAsync(5_000); // 18:01:01
    expect(slots).toEqual(['2026-12-03T18:01:00.000Z']);
    granted = undefined;
    await s.stop();
  });

  it('a job held past a future claim after its clock was set back resumes after `quorumd jobs reset` withdrew the claim, without a restart', async () => {
    // n2 claimed 19:00:00 with a clock an hour ahead; this node's clock was that far ahead too and is put right.
    const future = { slot: T0 + 3_600_000, node: 2, term: 3, token: 30, index: 7 };
    let rec: JobRecord = { name: 'tick', claim: future, result: null };
    const { s, slots, lines } = scheduler('*/10 * * * * *', undefined, () => rec);
    s.start();
    await vi.advanceTimersByTimeAsync(4_700); // 18:00:05
    step(-30_000); // 17:59:35
    await vi.advanceTimersByTimeAsync(20_000); // 17:59:55: held past 19:00:00
    expect(slots).toEqual([]);
    expect(s.view()[0]!.nextRun).toBe('2026-12-03T19:00:10.000Z');
    // The reset (applied on every node): the claim withdrawn behind a floor at the leader's clock.
    const floor = Date.now();
    rec = { name: 'tick', claim: null, result: null, reset: { at: floor, floor, node: 1, term: 4, index: 9, withdrawn: future } };
    expect(s.view()[0]!.nextRun).toBe('2026-12-03T18:00:00.000Z');
    await vi.advanceTimersByTimeAsync(HELD_RECHECK_MS + 1_000);
    // The timer found the reset within HELD_RECHECK_MS and fired the first slot after the floor.
    expect(slots).toEqual(['2026-12-03T18:00:00.000Z']);
    expect(lines.find((l) => l.msg.includes('was withdrawn (quorumd jobs reset)'))?.msg).toBe(
      "the job's claim of 2026-12-03T19:00:00.000Z was withdrawn (quorumd jobs reset): its next slot is 2026-12-03T18:00:00.000Z",
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(slots).toEqual(['2026-12-03T18:00:00.000Z', '2026-12-03T18:00:10.000Z']);
    await s.stop();
  });
});
