import type { Storage } from '../../../hal/interfaces.ts';

/** A disk that lies: fsync reports success at once and makes nothing durable (the planted bug). */
export function lyingStorage(s: Storage): Storage {
  return {
    list: () => s.list(),
    read: (n) => s.read(n),
    write: (n, d) => s.write(n, d),
    append: (n, d) => s.append(n, d),
    truncate: (n, z) => s.truncate(n, z),
    rename: (a, b) => s.rename(a, b),
    remove: (n) => s.remove(n),
    sync: (_n, done) => done(null),
    syncDir: (done) => done(null),
  };
}
