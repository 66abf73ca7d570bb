/**
 * Reads a configuration or secret file the daemon was pointed at: only a regular file,
 * and never more than a limit. readFileSync on a named pipe blocks until a writer comes
 * (forever: `quorumd start`, `config validate` and `dev --jobs` hung on one), and on
 * /dev/zero it reads until memory runs out. The open is non-blocking so that a FIFO is
 * refused instead of waited on (O_NONBLOCK changes nothing for a regular file).
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Why a file was refused; `message` says what was expected, or the system's error for 'io' (callers add the file's name). */
export class FileReadError extends Error {
  constructor(
    readonly reason: 'not-regular' | 'too-large' | 'io',
    message: string,
  ) {
    super(message);
  }
}

/** What a non-regular file is, for the error that refuses it. */
function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The bytes of the regular file `path`, at most `maxBytes` of them; throws FileReadError. */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  let fd: number | undefined;
  try {
    try {
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new FileReadError('io', (err as Error).message);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError('not-regular', `expected a regular file, got ${fileKind(st)}`);
    if (st.size > maxBytes) throw new FileReadError('too-large', `expected at most ${maxBytes} bytes, got ${st.size}`);
    // Sized to the file, one byte more to see that it grew while we read; grown (at most
    // to one byte past the limit) only if it did. Not the limit itself: a 64-byte key
    // would cost a zeroed MiB, kept alive by the view returned.
    let buf = Buffer.alloc(st.size + 1);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      len += n;
      if (n === 0 || len > maxBytes) break;
      if (len === buf.length) {
        const more = Buffer.alloc(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(more, 0, 0, len);
        buf = more;
      }
    }
    if (len > maxBytes) throw new FileReadError('too-large', `expected at most ${maxBytes} bytes, got more`);
    return buf.subarray(0, len);
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw new FileReadError('io', (err as Error).message);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
