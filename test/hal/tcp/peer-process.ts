/**
 * A TcpLink in a process of its own, for tests that SIGKILL a peer (its kernel then
 * closes the sockets, as when a node process is killed). Arguments (JSON in argv[2]):
 * { cluster, self, key (hex), base, ids }: listens on base + self, dials base + each
 * other id. Prints `connected <peers>` whenever its outgoing connections change.
 */
import { TcpLink } from '../../../hal/tcp/link.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as { cluster: number; self: number; key: string; base: number; ids: number[] };
const link = new TcpLink({
  cluster: o.cluster,
  self: o.self,
  keyring: { current: new Uint8Array(Buffer.from(o.key, 'hex')) },
  listen: { host: '127.0.0.1', port: o.base + o.self },
  peers: o.ids.filter((i) => i !== o.self).map((id) => ({ id, host: '127.0.0.1', port: o.base + id })),
  reconnect: { initialMs: 20, maxMs: 200 },
});
link.onFrame(() => {});
let last = '';
// Bounded: the parent kills this process; a lost parent ends it after 60 s.
const poll = setInterval(() => {
  const now = link.connectedPeers().join(',');
  if (now !== last) process.stdout.write(`connected ${(last = now)}\n`);
}, 5);
setTimeout(() => {
  clearInterval(poll);
  link.close(() => process.exit(0));
}, 60_000).unref();
