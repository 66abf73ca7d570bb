/**
 * Secret files: the cluster key, API tokens, broker passwords, TLS private keys.
 *
 * Threat model (docs/security.md): other local users of a board are not trusted. A
 * secret that they can read is a secret they hold, so a node refuses to start with a
 * secret file (or a config file with a secret written inline) that group or others
 * may read, and says which file and which `chmod` fixes it. It never "fixes" the mode
 * itself: a file somebody made readable may already have been read, and the operator
 * must know (and maybe rotate the secret).
 *
 * New secrets (the API token a node creates at its first start) are created with mode
 * 0600 in one step (O_CREAT|O_EXCL with the mode), never written first and chmod-ed
 * after, and fsynced with their directory so that a power cut cannot leave a node
 * whose clients hold a token the node forgot.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { type FileReadError, readRegularFile } from './regular-file.ts';

export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

/** Largest secret file read: keys, tokens and PEM keys are a few KiB at most. */
const MAX_SECRET_BYTES = 64 * 1024;

/**
 * The problem with a file's permissions, or undefined when only its owner may read it.
 * `what` names the file's role (e.g. `cluster.keyFile`).
 */
export function loosePermissions(path: string, what: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return undefined; // reading it reports the real problem
  }
  if ((mode & 0o077) === 0) return undefined;
  const who = [(mode & 0o070) !== 0 ? 'its group' : '', (mode & 0o007) !== 0 ? 'other users' : ''].filter(Boolean).join(' and ');
  return `${what}: ${path} holds a secret but ${who} may access it (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); only its owner may: run  chmod 600 ${path}  (and rotate the secret if someone else may have read it)`;
}

/**
 * Reads a secret file (trimmed), refusing one that group or others may read.
 * Throws SecretFileError naming the file and the fix.
 */
export function readSecretFile(path: string, what: string): string {
  const loose = loosePermissions(path, what);
  if (loose) throw new SecretFileError(loose);
  let buf: Buffer;
  try {
    // Only a regular file, never past the limit: a named pipe blocked `start` for good.
    buf = readRegularFile(path, MAX_SECRET_BYTES);
  } catch (err) {
    const e = err as FileReadError;
    throw new SecretFileError(e.reason === 'io' ? `${what}: cannot read ${path}: ${e.message}` : `${what}: ${path}: ${e.message} (a secret)`);
  }
  return buf.toString('utf8').trim();
}

/** A new random API token: 32 bytes, base64url (43 characters, safe in headers and shells). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The token in `path`, created (mode 0600, fsynced) when the file does not exist.
 * Returns whether it was created. An existing file must pass readSecretFile's checks
 * and hold at least 16 characters.
 */
export function ensureTokenFile(path: string, what: string): { token: string; created: boolean } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number | undefined;
  const token = newToken();
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new SecretFileError(`${what}: cannot create ${path}: ${(err as Error).message}`);
  }
  if (fd === undefined) {
    const t = readSecretFile(path, what);
    if (t.length < 16) throw new SecretFileError(`${what}: ${path} holds ${t.length} characters, expected a token of at least 16`);
    return { token: t, created: false };
  }
  try {
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* a directory fsync is best effort on file systems that refuse it */
  }
  return { token, created: true };
}
