/**
 * The stored floor (daemon/engines/floor-file.ts) on its own, in a temp directory: when
 * it writes (leadership tokens at once, lock tokens at most once per URGENT_MIN_MS,
 * anything else at most once per PERIOD_MS, nothing while the floor does not move),
 * how it writes (0600, whole records, the newest value), and what it refuses to start
 * from (damaged, another node's, another engine's), naming the file.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FloorFile, readFloor } from '../../daemon/engines/floor-file.ts';
import { until } from './servers.ts';
import { quietLog } from './harness.ts';

const owner = { cluster: 'plant', node: 'pi-a' };
let dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'floor-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const stored = (dir: string) => JSON.parse(readFileSync(join(dir, 'etcd-revision-floor.json'), 'utf8')) as { floor: number; owner: unknown; engine: string };

describe('FloorFile', () => {
  it('writes a leadership token at once, lock tokens at most once per urgentMinMs, the rest at most once per periodMs', async () => {
    const dir = tmp();
    const f = new FloorFile({ dataDir: dir, engine: 'etcd', owner, service: 'http://e:2379', log: quietLog, urgentMinMs: 300, periodMs: 60_000 });
    expect(f.initial).toBe(0);
    f.note(10, 'later'); // the first write: nothing on disk yet
    await until('first write', () => f.writes === 1, 5000, 5);
    expect(stored(dir)).toEqual({ owner, engine: 'etcd', floor: 10, writtenAt: expect.any(String), service: 'http://e:2379' });
    expect(statSync(join(dir, 'etcd-revision-floor.json')).mode & 0o777).toBe(0o600);
    // Moving, but not a token: waits for the period (60 s here), so nothing is written now.
    for (let v = 11; v < 60; v++) f.note(v, 'later');
    // A leadership token: at once, with the newest value.
    f.note(60, 'now');
    await until('the election win written', () => f.writes === 2, 5000, 5);
    expect(stored(dir).floor).toBe(60);
    // Lock grants in a burst: one write, after urgentMinMs, of the newest.
    const t0 = performance.now();
    for (let v = 61; v <= 70; v++) f.note(v, 'soon');
    await until('the burst written once', () => f.writes === 3, 5000, 5);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
    expect(stored(dir).floor).toBe(70);
    // A token already below the newest value, not yet on disk: still written.
    f.note(80, 'later');
    f.note(75, 'now');
    await until('written', () => f.writes === 4, 5000, 5);
    expect(stored(dir).floor).toBe(80);
    // Nothing new: no write.
    f.note(80, 'now');
    await f.flush();
    expect(f.writes).toBe(4);
    f.close();
    // Read back at the next start.
    expect(new FloorFile({ dataDir: dir, engine: 'etcd', owner, service: '', log: quietLog }).initial).toBe(80);
  });

  it('flush writes what moved at once (a stop); the value on disk only grows', async () => {
    const dir = tmp();
    const f = new FloorFile({ dataDir: dir, engine: 'etcd', owner, service: '', log: quietLog, periodMs: 60_000 });
    f.note(5, 'now');
    await until('written', () => f.writes === 1, 5000, 5);
    f.note(9, 'later');
    f.note(7, 'later');
    await f.flush();
    expect(stored(dir).floor).toBe(9);
    f.close();
  });

  it('refuses a damaged file, another node’s or another engine’s, naming the file and what to do', () => {
    const dir = tmp();
    const file = join(dir, 'etcd-revision-floor.json');
    writeFileSync(file, 'garbage');
    expect(() => readFloor(dir, 'etcd', owner)).toThrow(`${file} is damaged (not JSON)`);
    expect(() => readFloor(dir, 'etcd', owner)).toThrow(`stop this node, delete ${file} and start it again`);
    writeFileSync(file, JSON.stringify({ owner, engine: 'etcd', floor: -1 }));
    expect(() => readFloor(dir, 'etcd', owner)).toThrow(/is damaged \(expected \{owner: \{cluster, node\}, engine, floor\}\)/);
    writeFileSync(file, JSON.stringify({ owner: { cluster: 'plant', node: 'pi-b' }, engine: 'etcd', floor: 5 }));
    expect(() => readFloor(dir, 'etcd', owner)).toThrow(`${file} belongs to node pi-b of cluster plant (engine etcd), but this is node pi-a of cluster plant`);
    writeFileSync(join(dir, 'zookeeper-zxid-floor.json'), JSON.stringify({ owner, engine: 'etcd', floor: 5 }));
    expect(() => readFloor(dir, 'zookeeper', owner)).toThrow(/engine etcd\), but this is node pi-a of cluster plant \(engine zookeeper\)/);
    writeFileSync(file, JSON.stringify({ owner, engine: 'etcd', floor: 5 }));
    expect(readFloor(dir, 'etcd', owner)).toBe(5);
    expect(readFloor(tmp(), 'etcd', owner)).toBe(0);
  });
});
