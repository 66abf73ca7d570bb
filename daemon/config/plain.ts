/**
 * The config helpers a running node needs after its config is loaded: plain functions
 * with no zod and no YAML. A node process (dist/node.cjs) loads the config parser
 * (daemon/config/load.ts with zod, yaml and the schemas) from a bundle of its own and
 * lets go of it once the config is read (daemon/config/load-apart.ts), so whatever the
 * node keeps calling must not live in a module that imports zod. Everything imports
 * them from here (the schemas too).
 */
import type { EtcdConfig, ZookeeperConfig } from './external.ts';

/** A key as written in a config (32-128 hex digits or base64:<16-64 bytes>), or undefined when it is not one. */
export function parseKey(s: string): Uint8Array | undefined {
  let b: Buffer;
  if (s.startsWith('base64:')) {
    const t = s.slice(7);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return undefined;
    b = Buffer.from(t, 'base64');
  } else {
    if (!/^([0-9a-fA-F]{2})+$/.test(s)) return undefined;
    b = Buffer.from(s, 'hex');
  }
  if (b.length < 16 || b.length > 64) return undefined;
  return new Uint8Array(b);
}

/** `host:port` or `[v6]:port` with a port 0..65535, or undefined when it is not one. */
export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A member's bully priority: as configured, else a witness 0, else its 1-based position in the list. */
export function bullyPriority(m: { role: 'voter' | 'witness' | 'observer'; priority?: number | undefined }, index: number): number {
  if (m.priority !== undefined) return m.priority;
  return m.role === 'witness' ? 0 : index + 1;
}

/** How often a leader renews its etcd lease: etcd.keepAliveMs, else a fifth of the TTL. */
export const etcdKeepAliveMs = (c: EtcdConfig): number => c.keepAliveMs ?? c.ttlSec * 200;
/** How often a leader probes its ZooKeeper session: zookeeper.probeMs, else a sixth of the session timeout (at least 20 ms). */
export const zkProbeMs = (c: ZookeeperConfig): number => c.probeMs ?? Math.max(20, Math.floor(c.sessionTimeoutMs / 6));
