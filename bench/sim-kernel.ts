/**
 * Micro-benchmark of the simulation kernel (firmware-sim/): raw scheduler throughput
 * and a loaded 5-board world (a Raft-like traffic pattern over the MQTT model).
 * Prints events/second of wall time and the speed-up over real time.
 *
 *   npx tsx bench/sim-kernel.ts
 */
import { Rng } from '../src/rng.ts';
import { Scheduler, Trace } from '../firmware-sim/scheduler.ts';
import { World } from '../firmware-sim/world.ts';

function rawScheduler(events: number, pending: number): void {
  const trace = new Trace();
  const s = new Scheduler(trace);
  const rng = new Rng(1);
  let n = 0;
  const tick = (i: number) => {
    n++;
    s.after(1 + (rng.u32() % 10_000), tick, i);
  };
  for (let i = 0; i < pending; i++) s.after(rng.u32() % 10_000, tick, i);
  const t0 = performance.now();
  s.runWhile(() => n < events, { untilUs: Number.MAX_SAFE_INTEGER, maxEvents: events + 1 });
  const dt = (performance.now() - t0) / 1000;
  console.log(`scheduler: ${n} events, ${pending} pending: ${(n / dt / 1e6).toFixed(2)} M events/s`);
}

function rawCancel(events: number): void {
  // A timer re-armed on every event (election-timeout style): cancel + schedule each time.
  const s = new Scheduler(new Trace());
  let n = 0;
  let pendingTimer = s.after(1_000_000, () => {});
  const tick = () => {
    n++;
    pendingTimer.cancel();
    pendingTimer = s.after(1_000_000, () => {});
    s.after(10, tick);
  };
  s.after(10, tick);
  const t0 = performance.now();
  s.runWhile(() => n < events, { untilUs: Number.MAX_SAFE_INTEGER, maxEvents: events + 1 });
  const dt = (performance.now() - t0) / 1000;
  console.log(`scheduler with re-armed timer: ${(n / dt / 1e6).toFixed(2)} M ticks/s`);
}

function loadedCluster(virtualSeconds: number): void {
  const w = new World({ seed: 1, board: { bootDelayMs: 100 } });
  const leader = 1;
  let frames = 0;
  w.onBoot((hal) => {
    const link = hal.links[0]!;
    let walBytes = 0;
    link.onFrame((f) => {
      frames++;
      hal.storage.append('wal', f);
      // Segment rotation, as a real WAL does: keeps the file (and the bench's memory) bounded.
      walBytes += f.length;
      if (walBytes > 1_000_000) {
        hal.storage.remove('wal');
        walBytes = 0;
      }
      if (hal.node !== leader) link.send(leader, f.subarray(0, 16)); // ack
    });
    if (hal.node === leader) {
      const payload = new Uint8Array(200);
      const beat = () => {
        for (let p = 2; p <= 5; p++) link.send(p, payload);
        hal.storage.append('wal', payload);
        hal.storage.sync('wal', () => {});
        hal.clock.setTimer(5, beat); // 200 appends/s to each follower
      };
      beat();
    }
    const election = () => {
      hal.watchdog.feed();
      hal.clock.setTimer(150, election);
    };
    election();
  });
  for (let id = 1; id <= 5; id++) w.addBoard(id);
  w.run(200);
  const ev0 = w.sched.fired;
  const t0 = performance.now();
  w.run(virtualSeconds * 1000);
  const dt = (performance.now() - t0) / 1000;
  const ev = w.sched.fired - ev0;
  console.log(
    `5-board world: ${virtualSeconds} s virtual in ${dt.toFixed(2)} s wall (${(virtualSeconds / dt).toFixed(0)}× real time), ` +
      `${ev} events (${(ev / dt / 1e6).toFixed(2)} M events/s), ${frames} frames, trace ${w.trace.lines} lines`,
  );
}

rawScheduler(3_000_000, 1000);
rawScheduler(3_000_000, 100_000);
rawCancel(2_000_000);
loadedCluster(60);
loadedCluster(600);
