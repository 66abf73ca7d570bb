import type { Link, Storage } from '../../../hal/interfaces.ts';

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

/** A link that hides session losses (and 'down') from the runtime: a leader that keeps its read lease after its broker session ended (the planted bug). */
export function sessionBlindLink(l: Link): Link {
  return {
    name: l.name,
    maxFrame: l.maxFrame,
    send: (to, frame) => l.send(to, frame),
    onFrame: (h) => l.onFrame(h),
    onEvent: (h) => l.onEvent((ev) => {
      if (ev.kind !== 'session-lost' && ev.kind !== 'down') h(ev);
    }),
    close: (d) => l.close(d),
  };
}
