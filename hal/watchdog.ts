/**
 * `Watchdog` on the Linux watchdog device (/dev/watchdog; on a Pi the bcm2835_wdt,
 * enabled by `dtparam=watchdog=on`).
 *
 * Protocol (kernel Documentation/watchdog/watchdog-api.rst):
 *   - opening the device arms it;
 *   - any write is a keepalive; we write one byte, "\n" (not "V");
 *   - "magic close": writing "V" and then closing disarms it — unless the kernel has
 *     CONFIG_WATCHDOG_NOWAYOUT (or the driver's nowayout=1), in which case the board
 *     resets after the timeout whatever we do: that is the point of self-fencing.
 *     Closing without "V" leaves it armed (and the kernel logs "unexpected close").
 *
 * The timeout: WDIOC_GETTIMEOUT / WDIOC_SETTIMEOUT are ioctls, which Node cannot
 * issue without a native addon, so `timeoutMs` comes from config and must match
 * the driver's setting (bcm2835_wdt: `heartbeat` module parameter, default and
 * maximum 15 s; check with `wdctl`). Only one process may hold /dev/watchdog: disable
 * systemd's RuntimeWatchdogSec or give it /dev/watchdog1 (docs/wiring.md).
 * Feed at most every timeout/3 (`recommendedFeedMs`) so two missed feeds are survivable.
 *
 * Writes are synchronous (a single byte to a character device; they never block on
 * a real watchdog). A failed write does not throw out of feed(): it is counted and
 * reported through `onError`, because the runtime's tick must go on — a board that
 * cannot feed its watchdog will be reset by it, which is the safe outcome.
 */
import * as fs from 'node:fs';
import type { Watchdog } from './interfaces.ts';

export interface DevWatchdogOptions {
  /** Device path. Default "/dev/watchdog". Tests use a regular file. */
  path?: string;
  /** The driver's timeout in ms (see above: not readable from Node). Required; 1000..600000. */
  timeoutMs: number;
  /** Called with a clear error when a keepalive or the magic close fails. */
  onError?: (err: Error) => void;
}

export interface WatchdogStats {
  feeds: number;
  feedErrors: number;
}

export class DevWatchdog implements Watchdog {
  readonly path: string;
  readonly timeoutMs: number;
  readonly stats: WatchdogStats = { feeds: 0, feedErrors: 0 };
  private fd: number | null;
  private readonly onError: ((err: Error) => void) | undefined;

  /** Opens (and so arms) the watchdog. Throws a clear error if the device cannot be opened. */
  constructor(o: DevWatchdogOptions) {
    if (o === null || typeof o !== 'object') throw new TypeError('watchdog: options object required');
    this.path = o.path ?? '/dev/watchdog';
    if (typeof this.path !== 'string' || this.path.length === 0) throw new RangeError(`watchdog.path: expected a device path, got ${JSON.stringify(o.path)}`);
    if (typeof o.timeoutMs !== 'number' || !Number.isInteger(o.timeoutMs) || o.timeoutMs < 1000 || o.timeoutMs > 600_000) {
      throw new RangeError(`watchdog.timeoutMs: expected an integer 1000..600000 matching the driver's timeout (wdctl shows it), got ${String(o.timeoutMs)}`);
    }
    this.timeoutMs = o.timeoutMs;
    this.onError = o.onError;
    try {
      // O_WRONLY without O_CREAT: a missing device is ENOENT, not a new file.
      this.fd = fs.openSync(this.path, fs.constants.O_WRONLY);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const hint =
        err.code === 'ENOENT' ? ' (no watchdog driver: add dtparam=watchdog=on to config.txt)'
        : err.code === 'EBUSY' ? ' (another process holds it, e.g. systemd RuntimeWatchdogSec)'
        : err.code === 'EACCES' || err.code === 'EPERM' ? ' (permission: see the udev rule in docs/wiring.md)'
        : '';
      throw new Error(`watchdog: cannot open ${this.path}: ${err.code ?? err.message}${hint}`);
    }
  }

  /** Feed interval that leaves room for two missed feeds. */
  get recommendedFeedMs(): number {
    return Math.floor(this.timeoutMs / 3);
  }

  get armed(): boolean {
    return this.fd !== null;
  }

  feed(): void {
    if (this.fd === null) {
      this.report(new Error(`watchdog ${this.path}: feed() after disarm()`));
      return;
    }
    try {
      fs.writeSync(this.fd, KEEPALIVE);
      this.stats.feeds++;
    } catch (e) {
      this.stats.feedErrors++;
      this.report(new Error(`watchdog ${this.path}: keepalive write failed: ${(e as Error).message}`));
    }
  }

  /** Magic close: "V", then close. Idempotent. */
  disarm(): void {
    const fd = this.fd;
    if (fd === null) return;
    this.fd = null;
    try {
      fs.writeSync(fd, MAGIC);
    } catch (e) {
      this.report(new Error(`watchdog ${this.path}: magic close write failed (the board may reset): ${(e as Error).message}`));
    }
    try {
      fs.closeSync(fd);
    } catch (e) {
      this.report(new Error(`watchdog ${this.path}: close failed: ${(e as Error).message}`));
    }
  }

  private report(err: Error): void {
    try {
      this.onError?.(err);
    } catch {
      /* the error path must not throw into the tick */
    }
  }
}

const KEEPALIVE = Buffer.from('\n');
const MAGIC = Buffer.from('V');
