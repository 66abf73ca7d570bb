/**
 * Lock lease ids (DESIGN §6, docs/api.md "Locks"): acquiring a lock returns, besides
 * the public fencing token, a secret lease id; renewing and releasing need it. The
 * id is a client's secret (at least 128 random bits as 22+ base64url characters); the
 * replicated log, snapshots and frames on the wire carry only its digest, the first
 * LEASE_DIGEST_BYTES of SHA-256 over the id's UTF-8 bytes.
 *
 * node:crypto is allowed in src/: hashing is deterministic computation, not I/O.
 */
import { createHash } from 'node:crypto';
import { LEASE_DIGEST_BYTES } from './commands.ts';

export function leaseDigest(leaseId: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update('quorumd-lease\u0000').update(leaseId, 'utf8').digest().subarray(0, LEASE_DIGEST_BYTES));
}
