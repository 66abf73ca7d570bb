import { describe, expect, it } from 'vitest';
import type { LinkEvent } from '../../hal/interfaces.ts';
import type { MqttOptions } from '../../firmware-sim/mqtt.ts';
import { BROKER, World } from '../../firmware-sim/world.ts';

interface Rx {
  from: number;
  seq: number;
  at: number;
}

/** A world of n boards whose software records every frame and link event. */
function cluster(n: number, mqtt: MqttOptions = {}, seed = 1) {
  const w = new World({ seed, mqtt, board: { bootDelayMs: 100 } });
  const rx = new Map<number, Rx[]>();
  const events = new Map<number, Array<LinkEvent & { at: number }>>();
  w.onBoot((hal) => {
    const me = hal.node;
    const link = hal.links[0]!;
    link.onFrame((f) => rx.get(me)!.push({ from: f[0]!, seq: (f[1]! << 8) | f[2]!, at: w.nowUs }));
    link.onEvent((ev) => events.get(me)!.push({ ...ev, at: w.nowUs }));
  });
  for (let i = 1; i <= n; i++) {
    w.addBoard(i);
    rx.set(i, []);
    events.set(i, []);
  }
  w.run(200); // boot at 100 ms, connect a few ms later
  const send = (from: number, to: number, seq: number) => {
    const link = w.board(from).hal!.links[0]!;
    link.send(to, new Uint8Array([from, seq >> 8, seq & 0xff]));
    return w.nowUs;
  };
  return { w, rx, events, send };
}

describe('MQTT broker model', () => {
  it('connects every board (up event) and delivers within the latency bounds', () => {
    const { w, rx, events, send } = cluster(2, { latencyMinMs: 2, latencyMaxMs: 7 });
    expect(events.get(1)!.map((e) => e.kind)).toEqual(['up']);
    const sentAt: number[] = [];
    for (let i = 0; i < 500; i++) {
      sentAt.push(send(1, 2, i));
      w.run(0.5);
    }
    w.run(100);
    const got = rx.get(2)!;
    expect(got.length).toBe(500);
    const lat = got.map((r) => r.at - sentAt[r.seq]!);
    expect(Math.min(...lat)).toBeGreaterThanOrEqual(2000);
    expect(Math.max(...lat)).toBeLessThanOrEqual(7000);
    // the spread is really used
    expect(Math.max(...lat) - Math.min(...lat)).toBeGreaterThan(3000);
    expect(w.broker.stats.delivered).toBe(500);
  });

  it('a partition drops exactly the frames between groups', () => {
    const { w, rx, send } = cluster(4);
    w.partition([[1, 2], [3, 4]]);
    let seq = 0;
    const expected = new Map<number, number>([[1, 0], [2, 0], [3, 0], [4, 0]]);
    for (let from = 1; from <= 4; from++) {
      for (let to = 1; to <= 4; to++) {
        if (from === to) continue;
        send(from, to, seq++);
        const same = (from <= 2) === (to <= 2);
        if (same) expected.set(to, expected.get(to)! + 1);
      }
    }
    w.run(100);
    for (const [node, n] of expected) expect(rx.get(node)!.length).toBe(n);
    expect(w.broker.stats.droppedPartition).toBe(8);
    w.heal();
    send(1, 3, 999);
    w.run(100);
    expect(rx.get(3)!.some((r) => r.seq === 999)).toBe(true);
  });

  it('loss rate is near the configured value (binomial 5-sigma bound)', () => {
    const p = 0.2;
    const N = 5000;
    const { w, rx, send } = cluster(2, { lossRate: p });
    for (let i = 0; i < N; i++) {
      send(1, 2, i & 0xffff);
      if (i % 100 === 0) w.run(1);
    }
    w.run(100);
    const lost = N - rx.get(2)!.length;
    const sigma = Math.sqrt(N * p * (1 - p));
    expect(Math.abs(lost - N * p)).toBeLessThan(5 * sigma);
    expect(w.broker.stats.lost).toBe(lost);
  });

  it('duplication delivers some frames twice', () => {
    const { w, rx, send } = cluster(2, { dupRate: 0.3 });
    for (let i = 0; i < 200; i++) send(1, 2, i);
    w.run(100);
    const counts = new Map<number, number>();
    for (const r of rx.get(2)!) counts.set(r.seq, (counts.get(r.seq) ?? 0) + 1);
    const dups = [...counts.values()].filter((c) => c === 2).length;
    expect(counts.size).toBe(200);
    expect(dups).toBe(w.broker.stats.duplicated);
    expect(dups).toBeGreaterThan(30);
    expect(Math.max(...counts.values())).toBe(2);
  });

  it('reordering produces out-of-order delivery; without jitter or reorder, order is kept', () => {
    const inOrder = cluster(2, { latencyMinMs: 3, latencyMaxMs: 3 });
    for (let i = 0; i < 100; i++) {
      inOrder.send(1, 2, i);
      inOrder.w.run(0.1);
    }
    inOrder.w.run(100);
    const a = inOrder.rx.get(2)!.map((r) => r.seq);
    expect(a).toEqual([...Array(100).keys()]);

    const re = cluster(2, { latencyMinMs: 3, latencyMaxMs: 3, reorderRate: 0.2, reorderExtraMs: 10 });
    for (let i = 0; i < 100; i++) {
      re.send(1, 2, i);
      re.w.run(0.1);
    }
    re.w.run(100);
    const b = re.rx.get(2)!.map((r) => r.seq);
    expect(b.length).toBe(100);
    let inversions = 0;
    for (let i = 1; i < b.length; i++) if (b[i]! < b[i - 1]!) inversions++;
    expect(inversions).toBeGreaterThan(0);
    expect(re.w.broker.stats.reordered).toBeGreaterThan(0);
  });

  it('broker restart: down events at once, in-flight frames lost, up again after', () => {
    const { w, rx, events, send } = cluster(3, { latencyMinMs: 5, latencyMaxMs: 5 });
    send(1, 2, 1);
    w.run(1);
    w.broker.restart(2000);
    w.run(10);
    expect(rx.get(2)!.length).toBe(0);
    expect(w.broker.stats.droppedInFlight).toBe(1);
    for (const n of [1, 2, 3]) expect(events.get(n)!.map((e) => e.kind)).toEqual(['up', 'down']);
    send(1, 2, 2); // while down: dropped
    w.run(3000);
    for (const n of [1, 2, 3]) expect(events.get(n)!.map((e) => e.kind)).toEqual(['up', 'down', 'up']);
    for (const n of [1, 2, 3]) expect(events.get(n)![2]!.at).toBeGreaterThanOrEqual(events.get(n)![1]!.at + 2_000_000);
    send(1, 2, 3);
    w.run(50);
    expect(rx.get(2)!.map((r) => r.seq)).toEqual([3]);
    // no will on a broker restart
    expect([...events.values()].flat().some((e) => e.kind === 'peer-gone')).toBe(false);
  });

  it('Last Will: peer-gone after a power loss, after the keepalive timeout, and never for live peers', () => {
    const { w, events } = cluster(3, { keepaliveMs: 1000, latencyMinMs: 1, latencyMaxMs: 1 });
    const cutAt = w.nowUs;
    w.board(3).setMains(false);
    w.run(1400);
    expect(events.get(1)!.filter((e) => e.kind === 'peer-gone')).toEqual([]);
    w.run(200);
    for (const n of [1, 2]) {
      const gone = events.get(n)!.filter((e) => e.kind === 'peer-gone');
      expect(gone.map((e) => (e as { peer: number }).peer)).toEqual([3]);
      expect(gone[0]!.at - cutAt).toBe(1_500_000 + 1000); // 1.5 × keepalive + one hop
    }
    w.run(10_000);
    const all = [...events.get(1)!, ...events.get(2)!].filter((e) => e.kind === 'peer-gone');
    expect(all.length).toBe(2); // nothing about live peers 1 and 2
  });

  it('Last Will: a crash is noticed at once (socket closed); the restarted process reconnects', () => {
    const { w, events } = cluster(2, { keepaliveMs: 5000, latencyMinMs: 1, latencyMaxMs: 1 });
    const t0 = w.nowUs;
    w.board(2).crashProcess(3000);
    w.run(10);
    const gone = events.get(1)!.filter((e) => e.kind === 'peer-gone');
    expect(gone.length).toBe(1);
    expect(gone[0]!.at - t0).toBe(2000);
    w.run(4000);
    expect(events.get(2)!.map((e) => e.kind)).toEqual(['up', 'up']); // old incarnation's list + new one
  });

  it('a session dropped by the client: session-lost and down at once for it, its will one hop later for the others, back after reconnectMs', () => {
    const { w, events } = cluster(3, { keepaliveMs: 5000, latencyMinMs: 1, latencyMaxMs: 1, reconnectMs: 1000 });
    const t0 = w.nowUs;
    w.broker.client(3)!.dropSession();
    expect(events.get(3)!.map((e) => e.kind)).toEqual(['up', 'session-lost', 'down']);
    w.run(5);
    for (const n of [1, 2]) {
      const gone = events.get(n)!.filter((e) => e.kind === 'peer-gone');
      expect(gone.map((e) => (e as { peer: number }).peer)).toEqual([3]);
      expect(gone[0]!.at - t0).toBe(2000); // FIN to the broker, the will to the peer
    }
    w.run(1100);
    expect(events.get(3)!.map((e) => e.kind)).toEqual(['up', 'session-lost', 'down', 'up']);
  });

  it('a partition that separates a board from the broker ends its session: down for it, peer-gone for others', () => {
    const { w, events, send, rx } = cluster(3, { keepaliveMs: 1000, latencyMinMs: 1, latencyMaxMs: 1 });
    w.partition([[1, 2, BROKER], [3]]);
    w.run(1600);
    expect(events.get(3)!.map((e) => e.kind)).toEqual(['up', 'session-lost', 'down']);
    for (const n of [1, 2]) expect(events.get(n)!.filter((e) => e.kind === 'peer-gone').length).toBe(1);
    w.heal();
    w.run(1500);
    expect(events.get(3)!.map((e) => e.kind)).toEqual(['up', 'session-lost', 'down', 'up']);
    send(1, 3, 7);
    w.run(10);
    expect(rx.get(3)!.map((r) => r.seq)).toEqual([7]);
  });

  it('a clean close: the others hear its goodbye one hop later, no will; with goodbyes off, nothing', () => {
    for (const goodbyes of [true, false]) {
      const { w, events } = cluster(3, { keepaliveMs: 1000, latencyMinMs: 1, latencyMaxMs: 1, goodbyes });
      const t0 = w.nowUs;
      w.board(3).hal!.links[0]!.close();
      w.run(3000); // past the keepalive timeout: no will follows either
      for (const n of [1, 2]) {
        const news = events.get(n)!.filter((e) => e.kind === 'peer-goodbye' || e.kind === 'peer-gone');
        if (goodbyes) {
          expect(news.map((e) => [e.kind, (e as { peer: number }).peer])).toEqual([['peer-goodbye', 3]]);
          expect(news[0]!.at - t0).toBe(1000);
        } else expect(news).toEqual([]);
      }
      expect(w.broker.stats.wills).toBe(0);
      expect(w.broker.stats.goodbyes).toBe(goodbyes ? 1 : 0);
    }
  });

  it('a board cut off from the broker cannot say goodbye: its will comes after the keepalive timeout instead', () => {
    const { w, events } = cluster(3, { keepaliveMs: 1000, latencyMinMs: 1, latencyMaxMs: 1 });
    w.partition([[1, 2, BROKER], [3]]);
    w.run(100); // cut off, the session not yet timed out
    w.board(3).hal!.links[0]!.close();
    w.run(3000);
    for (const n of [1, 2]) {
      expect(events.get(n)!.filter((e) => e.kind === 'peer-goodbye')).toEqual([]);
      expect(events.get(n)!.filter((e) => e.kind === 'peer-gone').map((e) => (e as { peer: number }).peer)).toEqual([3]);
    }
    expect(w.broker.stats.goodbyes).toBe(0);
  });

  it('a short separation healed before the keepalive timeout costs no session', () => {
    const { w, events } = cluster(2, { keepaliveMs: 1000 });
    w.partition([[1, BROKER], [2]]);
    w.run(500);
    w.heal();
    w.run(5000);
    expect(events.get(2)!.map((e) => e.kind)).toEqual(['up']);
    expect(events.get(1)!.map((e) => e.kind)).toEqual(['up']);
  });

  it('bad input: clear errors', () => {
    const { w } = cluster(1);
    const link = w.board(1).hal!.links[0]!;
    expect(link.name).toBe('mqtt');
    expect(link.maxFrame).toBe(65536);
    expect(() => link.send(0, new Uint8Array(1))).toThrow(/node id/);
    expect(() => link.send(2, new Uint8Array(65537))).toThrow(/maxFrame/);
    expect(() => link.send(2, [1, 2] as unknown as Uint8Array)).toThrow(/Uint8Array/);
    expect(() => new World({ seed: 1, mqtt: { lossRate: 2 } })).toThrow(/lossRate/);
    expect(() => new World({ seed: 1, mqtt: { latencyMinMs: 5, latencyMaxMs: 1 } })).toThrow(/latencyMaxMs/);
    expect(() => new World({ seed: 1, mqtt: { goodbyes: 'yes' as unknown as boolean } })).toThrow(/goodbyes: expected true or false, got yes/);
    expect(() => w.partition([[1], [1]])).toThrow(/more than one group/);
  });
});
