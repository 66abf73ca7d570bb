/**
 * Runs before every test file (vitest.config.ts setupFiles).
 *
 * umask 077: a node refuses secret files (and configs with a secret inline) that group
 * or others may read (daemon/config/secrets.ts, docs/security.md), as a careful
 * operator's umask would make them. Tests write many throwaway configs with an inline
 * key; with this, they are private like a real deployment's. The refusal itself is
 * tested in test/security with files made 0644 on purpose (chmod, not the umask).
 */
import { afterAll } from 'vitest';
import { removeTestTokenDir } from './auth.ts';

process.umask(0o077);

// The test file's API token directory (test/helpers/auth.ts), if it made one. Registered
// first, so it runs after the file's own afterAll hooks (which may still stop nodes).
afterAll(() => removeTestTokenDir());
