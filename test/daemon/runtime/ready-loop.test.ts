/**
 * ReadyLoop (daemon/runtime/ready-loop.ts): when an asynchronous persist completes, its
 * Ready is acted on at once, and the next persist waits for the end of the event-loop
 * turn (Clock.soon) so that what arrived beside the completion joins it; without `soon`
 * (the simulator's clock) the next persist starts at once.
 */
import { describe, expect, it } from 'vitest';
import type { Clock, Done } from '../../../hal/interfaces.ts';
import { ReadyLoop } from '../../../daemon/runtime/ready-loop.ts';

/** A loop over a queue of inputs: each Ready takes every input queued so far; persists complete when the test says. */
function rig(withSoon: boolean) {
  const log: string[] = [];
  const queued: string[] = [];
  const deferred: Array<() => void> = [];
  const pending: Done[] = [];
  const clock: Clock = {
    monotonicMs: () => 0,
    wallMs: () => 0,
    setTimer: () => () => {},
    ...(withSoon ? { soon: (fn: () => void) => void deferred.push(fn) } : {}),
  };
  const loop = new ReadyLoop<string[]>({
    clock,
    running: () => true,
    eager: () => log.push('eager'),
    apply: () => log.push('apply'),
    next: () => (queued.length ? queued.splice(0) : undefined),
    persist: (rd, done) => {
      log.push(`persist ${rd.join(',')}`);
      pending.push(done);
      return true;
    },
    durable: (rd) => log.push(`durable ${rd.join(',')}`),
    fatal: (err) => log.push(`fatal ${err.message}`),
  });
  const input = (x: string) => {
    queued.push(x);
    loop.pump();
  };
  const complete = () => pending.shift()!(null);
  const runDeferred = () => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { log, input, complete, runDeferred, deferred, pending };
}

describe('ReadyLoop: the next persist after a completed one waits for the end of the turn', () => {
  it('with soon: acts on the durable Ready at once, persists what came beside the completion together, one turn later', () => {
    const r = rig(true);
    r.input('a'); // idle loop: persists at once
    expect(r.log.filter((l) => l.startsWith('persist'))).toEqual(['persist a']);
    r.input('b'); // queued behind the write in flight
    r.log.length = 0;
    r.complete();
    // The durable Ready is acted on (and eager sends and applies run) now; no persist yet.
    expect(r.log).toEqual(['durable a', 'eager', 'apply']);
    expect(r.deferred).toHaveLength(1);
    // More input in the same turn (a message read after the disk's completion): sent and
    // applied as usual, but it waits for the persist of the turn's end with b.
    r.input('c');
    expect(r.log.filter((l) => l.startsWith('persist'))).toEqual([]);
    r.runDeferred();
    expect(r.log.filter((l) => l.startsWith('persist'))).toEqual(['persist b,c']);
    // That one completing with nothing queued: the loop goes idle after the turn, and the
    // next lone input persists at once again.
    r.complete();
    r.runDeferred();
    r.log.length = 0;
    r.input('d');
    expect(r.log.filter((l) => l.startsWith('persist'))).toEqual(['persist d']);
    expect(r.log.some((l) => l.startsWith('fatal'))).toBe(false);
  });

  it('without soon (the simulator): the next persist starts in the completion itself', () => {
    const r = rig(false);
    r.input('a');
    r.input('b');
    r.log.length = 0;
    r.complete();
    expect(r.log).toEqual(['durable a', 'eager', 'apply', 'persist b']);
    r.input('c');
    r.complete();
    expect(r.log.filter((l) => l.startsWith('persist'))).toEqual(['persist b', 'persist c']);
  });
});
