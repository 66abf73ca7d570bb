/**
 * The "service went back" floor of the external engines, kept in the node's data
 * directory so that it survives a restart.
 *
 * Every token etcd or ZooKeeper hands out is a number the service counts up (etcd's
 * revision, ZooKeeper's zxid). A node checks every answer that must be at least as new
 * as what it already saw against the newest number it saw (the floor), and refuses for
 * good when the service answers below it: wiped and set up anew, or restored from an
 * older backup (etcd.ts checkNotBack, zookeeper.ts wroteAt). Held in memory only, the
 * floor was lost with the process: a site restarted after an etcd wipe accepted the new
 * numbering, and handed out fencing tokens below ones its resources had already seen.
 *
 * So the floor is written to `<dataDir>/etcd-revision-floor.json` or
 * `<dataDir>/zookeeper-zxid-floor.json` and read back at start. Not on every answer (SD
 * cards wear, and the point of the external engines is that boards keep almost nothing
 * on disk): a floor that lags a little still catches a wipe, since a wiped service
 * starts again near 1 (etcd revision 1; ZooKeeper epoch 1, zxid 0x100000000) and the
 * node's first answer after the restart is below any floor it had. Written:
 *
 *   - when the floor is a number this node handed out as a token — the numbers a
 *     fenced resource may remember: at once for an election win or a leader record
 *     rewritten (rare), within URGENT_MIN_MS for a lock grant whose token is the newest
 *     number seen (a burst of grants is one write);
 *   - otherwise at most every PERIOD_MS while the floor moves; never while it does not;
 *   - when the node stops, and when it finds that the service went back (so that a
 *     restart refuses just the same).
 *
 * Each write: a temporary file (mode 0600) written and fsynced, renamed over the old
 * one, the directory fsynced — on the libuv thread pool, never blocking the event loop
 * (the lease window's timer must not be delayed by a slow card). Writes never overlap:
 * one in flight, the newest value written next.
 *
 * The file names its owner (cluster and node) and the engine; a file that is not JSON,
 * has no valid floor, or names another node or cluster refuses the start with a message
 * naming the file. The operator accepts a service that was reset on purpose by stopping
 * the node and deleting the file (docs/external.md, "When the service goes back").
 */
import { constants, readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { EngineLog } from './etcd.ts';

/** At most one urgent write per this long (a burst of lock grants is one write). */
export const URGENT_MIN_MS = 1000;
/** A floor that moved is written at most this often otherwise. */
export const PERIOD_MS = 30_000;

/** What an engine needs of the stored floor (none: in memory only, as in library use and tests). */
export interface FloorStore {
  /** The file (for messages). */
  readonly file: string;
  /** The floor read at start (0: no file, first start). */
  readonly initial: number;
  /**
   * The engine's floor rose to `value` (or `value` is the floor and a token this node
   * handed out): `now` for a leadership token (written at once, after a write in
   * flight), `soon` for a lock token (at most one write per URGENT_MIN_MS), `later` for
   * anything else (at most one per PERIOD_MS).
   */
  note(value: number, when: FloorUrgency): void;
  /** Writes the newest value now if it is not written yet; resolves when it is durable (or failed: logged). */
  flush(): Promise<void>;
  /** No writes after this (the last flush() before it still completes). */
  close(): void;
}

export type FloorEngine = 'etcd' | 'zookeeper';
export type FloorUrgency = 'now' | 'soon' | 'later';

export function floorFileName(engine: FloorEngine): string {
  return engine === 'etcd' ? 'etcd-revision-floor.json' : 'zookeeper-zxid-floor.json';
}

interface FloorRecord {
  owner: { cluster: string; node: string };
  engine: FloorEngine;
  floor: number;
  /** Wall-clock time of the write, for the operator reading the file (not used by the node). */
  writtenAt: string;
  /** The service's endpoints at the time, for the operator (not checked: members may change). */
  service: string;
}

const what = (engine: FloorEngine) => (engine === 'etcd' ? 'etcd revision' : 'ZooKeeper zxid');

/**
 * The stored floor of `owner` for `engine` in `dataDir`: 0 when there is no file; throws
 * an Error naming the file and what to do when it cannot be read, is damaged, or belongs
 * to another node, cluster or engine.
 */
export function readFloor(dataDir: string, engine: FloorEngine, owner: { cluster: string; node: string }): number {
  const file = join(dataDir, floorFileName(engine));
  const accept = `If the file cannot be repaired: stop this node, delete ${file} and start it again — the node then accepts whatever numbering ${engine === 'etcd' ? 'etcd' : 'ZooKeeper'} has now, without the check against the numbers it saw before (docs/external.md, "When the service goes back")`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return 0;
    throw new Error(`${file}: cannot read the newest ${what(engine)} this node saw: ${e.message}${e.code === 'EACCES' || e.code === 'EPERM' ? ` (the data directory's files must belong to the user quorumd runs as)` : ''}`);
  }
  let v: Partial<FloorRecord> & Record<string, unknown>;
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw new Error(`${file} is damaged (not JSON): it holds the newest ${what(engine)} this node saw, which a restarted node checks the service against. ${accept}`);
  }
  const owned = v?.owner as Record<string, unknown> | undefined;
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.floor) || (v.floor as number) < 0 || typeof owned?.cluster !== 'string' || typeof owned?.node !== 'string' || (v.engine !== 'etcd' && v.engine !== 'zookeeper')) {
    throw new Error(`${file} is damaged (expected {owner: {cluster, node}, engine, floor}): it holds the newest ${what(engine)} this node saw, which a restarted node checks the service against. ${accept}`);
  }
  if (owned.cluster !== owner.cluster || owned.node !== owner.node || v.engine !== engine) {
    throw new Error(
      `${file} belongs to node ${owned.node} of cluster ${owned.cluster} (engine ${v.engine}), but this is node ${owner.node} of cluster ${owner.cluster} (engine ${engine}): a data directory copied from elsewhere. ` +
        `Each node keeps its own; stop this node and delete ${file} (it starts without the check against numbers it saw before)`,
    );
  }
  return v.floor as number;
}

export class FloorFile implements FloorStore {
  readonly file: string;
  readonly initial: number;
  private value: number;
  private written: number;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Writes completed (tests and the log). */
  writes = 0;

  constructor(
    private readonly o: {
      dataDir: string;
      engine: FloorEngine;
      owner: { cluster: string; node: string };
      /** The service's endpoints, recorded for the operator. */
      service: string;
      log: EngineLog;
      /** Monotonic clock, ms. */
      now?: () => number;
      urgentMinMs?: number;
      periodMs?: number;
    },
  ) {
    this.file = join(o.dataDir, floorFileName(o.engine));
    this.initial = readFloor(o.dataDir, o.engine, o.owner);
    this.value = this.initial;
    this.written = this.initial;
  }

  private now(): number {
    return (this.o.now ?? (() => performance.now()))();
  }

  note(value: number, when: FloorUrgency): void {
    if (this.closed) return;
    if (value > this.value) this.value = value;
    else if (when === 'later' || value <= this.written) return;
    // (A token below the newest value seen still asks for a write of that value: it is not on disk yet.)
    this.schedule(when);
  }

  private schedule(when: FloorUrgency): void {
    if (this.closed || this.value <= this.written) return;
    if (when === 'now') {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.write();
      return;
    }
    const wait = Math.max(0, this.lastWriteAt + (when === 'soon' ? (this.o.urgentMinMs ?? URGENT_MIN_MS) : (this.o.periodMs ?? PERIOD_MS)) - this.now());
    if (this.timer) {
      // A sooner write moves a periodic one forward; never the other way.
      if (when === 'later') return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, Math.ceil(wait));
    this.timer.unref?.();
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.write();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One write at a time; a request while one runs writes the newest value after it. */
  private write(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    if (this.value <= this.written) return Promise.resolve();
    const value = this.value;
    this.lastWriteAt = this.now();
    this.inFlight = this.writeOnce(value).then(
      () => {
        this.written = Math.max(this.written, value);
        this.writes++;
      },
      (err) => {
        this.o.log.warn({ file: this.file, error: (err as Error).message }, `could not write the newest ${what(this.o.engine)} this node saw to ${this.file}; trying again later (a restart in the meantime checks the service against the older value in the file)`);
      },
    ).finally(() => {
      this.inFlight = undefined;
      if (this.again) {
        this.again = false;
        void this.write();
      } else if (!this.closed && this.value > this.written) this.schedule('later');
    });
    return this.inFlight;
  }

  private async writeOnce(value: number): Promise<void> {
    const rec: FloorRecord = { owner: this.o.owner, engine: this.o.engine, floor: value, writtenAt: new Date().toISOString(), service: this.o.service };
    const tmp = join(dirname(this.file), `.${basename(this.file)}.tmp`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(rec)}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    const dir = await open(dirname(this.file), constants.O_RDONLY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
