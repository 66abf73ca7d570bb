/**
 * Typed errors of the durability layer.
 *
 * `StorageCorruptError` is fatal by design (docs/architecture.md, Durability): corruption anywhere but the
 * torn tail of the last WAL segment means committed data may be gone, and the node
 * must refuse to start rather than run with a silently shortened log. It names the
 * file and the byte offset so that an operator can look at the card.
 */
export class StorageCorruptError extends Error {
  override readonly name = 'StorageCorruptError';
  constructor(
    /** File name inside the storage directory. */
    readonly file: string,
    /** Byte offset in `file` where the bad data starts (-1 when the problem is not at one offset, e.g. a missing file). */
    readonly offset: number,
    readonly reason: string,
    /**
     * The file is sound but in a format newer than this build reads (its version field
     * is above the newest this build knows): a newer quorumd wrote it, and this node was
     * downgraded. Refused all the same, but not called damage.
     */
    readonly newer = false,
  ) {
    super(`${newer ? 'storage written by a newer quorumd' : 'storage corrupt'}: ${file}${offset >= 0 ? ` at byte ${offset}` : ''}: ${reason}`);
  }
}

/** A persist() call whose input breaks the durable log's rules (an engine bug); nothing of it was written. */
export class StorageInputError extends Error {
  override readonly name = 'StorageInputError';
}

/**
 * An I/O failure (write or fsync). After a failed fsync the state of the file is
 * unknown (the kernel may have dropped the dirty pages: "fsyncgate", PostgreSQL 2018),
 * so the log refuses all further persists; the runtime must restart and recover.
 */
export class StorageIoError extends Error {
  override readonly name = 'StorageIoError';
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}
