/**
 * Config sections of the external engines: `etcd:` (engine: etcd) and `zookeeper:`
 * (engine: zookeeper). Every key documented at its declaration (default and why);
 * docs/config.md and docs/engines.md have the user's side.
 *
 * The safety window of both (daemon/engines/safety.ts): a leader acts at most
 * T·(1 − driftRate) − serverLag − marginMs after sending its newest answered renewal,
 * where T is the lease TTL or session timeout. The renewals must come well inside that
 * window, or a healthy leader would switch off between two of them: checked here
 * (at least two renewal periods must fit).
 */
import { int } from './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';
import { etcdKeepAliveMs, zkProbeMs } from './plain.ts';

const tls = () => z.strictObject({
  /** CA that signed the servers' certificates (PEM). Default: Node's root CAs. */
  caFile: z.string({ error: 'expected a file path' }).optional(),
  /** Client certificate and key (PEM), for services that require client certificates. */
  certFile: z.string({ error: 'expected a file path' }).optional(),
  keyFile: z.string({ error: 'expected a file path' }).optional(),
});

/**
 * ρ: the largest clock rate difference between a board and the service's servers.
 * Default 0.001 (1000 ppm): ten times a crystal's tolerance, room for NTP slewing.
 */
const driftRate = () => z.number({ error: 'expected driftRate: a number 0..0.1' }).min(0, { error: 'expected driftRate: a number 0..0.1' }).max(0.1, { error: 'expected driftRate: a number 0..0.1' }).default(0.001);

/** M: fixed margin of the window, ms. Default 500: a late timer on a loaded board, a hook being told. */
const marginMs = () => int('milliseconds', 0, 60_000).default(500);

export const etcdSchema = () => z.strictObject({
  /**
   * etcd client URLs, http://host:port or https://host:port (all the same scheme).
   * Required. List every member: a request that cannot reach one is sent to the next.
   */
  endpoints: z
    .array(z.string({ error: 'expected a URL' }).regex(/^https?:\/\/[^\s/@]+(:\d{1,5})?\/?$/, { error: 'expected an etcd client URL http://host:port or https://host:port' }), { error: 'expected a list of etcd client URLs' })
    .min(1, { error: 'expected at least one etcd endpoint' })
    .max(16, { error: 'expected at most 16 endpoints' }),
  /**
   * Key prefix of this cluster in etcd, ending in '/'. Default /quorumd/<cluster.name>/.
   * Several quorumd clusters can share one etcd with different prefixes.
   */
  prefix: z.string({ error: 'expected a key prefix ending in /' }).regex(/^[^\s]{1,200}\/$/, { error: 'expected a key prefix of at most 200 characters ending in /, e.g. /quorumd/plant/' }).optional(),
  /**
   * TTL of the election lease, seconds. Default 5: a crashed leader's lease expires
   * (and the next node leads) within 5 s; a shorter TTL fails over faster but switches
   * a leader off sooner when etcd is slow. etcd raises a TTL below its own minimum
   * (1.5 × its election timeout).
   */
  ttlSec: int('seconds', 1, 3600).default(5),
  /** Renewal period of the lease, ms. Default: a fifth of the TTL (1000 for 5 s). */
  keepAliveMs: int('milliseconds', 50, 600_000).optional(),
  driftRate: driftRate(),
  marginMs: marginMs(),
  /** etcd user (etcd's authentication). Default: none. */
  username: z.string({ error: 'expected a string' }).min(1, { error: 'expected a user name' }).optional(),
  password: z.string({ error: 'expected a string' }).optional(),
  /** The password in a file (so that the config can be world-readable). */
  passwordFile: z.string({ error: 'expected a file path' }).optional(),
  /** TLS files for https:// endpoints. */
  tls: tls().optional(),
});

export const zookeeperSchema = () => z.strictObject({
  /** host:port of every server of the ensemble. Required. */
  servers: z
    .array(z.string({ error: 'expected host:port' }).regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, { error: 'expected a ZooKeeper server as host:port, e.g. 10.0.0.5:2181' }), { error: 'expected a list of host:port' })
    .min(1, { error: 'expected at least one ZooKeeper server' })
    .max(16, { error: 'expected at most 16 servers' }),
  /** Root znode of this cluster (created if missing). Default /quorumd/<cluster.name>. */
  chroot: z.string({ error: 'expected a znode path' }).regex(/^(\/[A-Za-z0-9_.-]+){1,8}$/, { error: 'expected an absolute znode path like /quorumd/plant' }).optional(),
  /**
   * Session timeout asked for, ms. Default 30000. The ensemble clamps it to
   * 2..20 × its tickTime (Debian: 4..40 s). A crashed leader's session expires after
   * it; see serverLagMs for why it must be long against the ensemble's syncLimit.
   */
  sessionTimeoutMs: int('milliseconds', 100, 600_000).default(30_000),
  /** Probe period (a read that renews the session and is timed), ms. Default: a sixth of the session timeout. */
  probeMs: int('milliseconds', 20, 600_000).optional(),
  /**
   * The ensemble's syncLimit × tickTime + tickTime, ms: how long a ZooKeeper server
   * cut off from its leader may still answer us while the leader hears nothing of
   * our session. Default 12000 (Debian's zoo.cfg: syncLimit 5, tickTime 2000). Set it
   * from your zoo.cfg; too small is unsafe.
   */
  serverLagMs: int('milliseconds', 0, 600_000).default(12_000),
  driftRate: driftRate(),
  marginMs: marginMs(),
  /** digest user: znodes are created readable and writable by this user only. Default: open ACLs. */
  username: z.string({ error: 'expected a string' }).min(1, { error: 'expected a user name' }).optional(),
  password: z.string({ error: 'expected a string' }).optional(),
  passwordFile: z.string({ error: 'expected a file path' }).optional(),
  /** Not supported: node-zookeeper-client speaks plain TCP only. Present = a config error that says so. */
  tls: tls().optional(),
});

export type EtcdConfig = z.infer<ReturnType<typeof etcdSchema>>;
export type ZookeeperConfig = z.infer<ReturnType<typeof zookeeperSchema>>;

export interface Issue {
  path: (string | number)[];
  message: string;
}

/** The checks that need more than one key (window vs renewals, credentials). */
export function checkExternal(c: { engine: string; etcd?: EtcdConfig | undefined; zookeeper?: ZookeeperConfig | undefined }): Issue[] {
  const out: Issue[] = [];
  if (c.engine === 'etcd' && !c.etcd) out.push({ path: ['etcd'], message: 'missing: engine: etcd needs an `etcd:` section with endpoints' });
  if (c.engine === 'zookeeper' && !c.zookeeper) out.push({ path: ['zookeeper'], message: 'missing: engine: zookeeper needs a `zookeeper:` section with servers' });
  if (c.etcd && c.engine !== 'etcd') out.push({ path: ['etcd'], message: `expected no etcd: section with engine: ${c.engine} (it is used by engine: etcd only)` });
  if (c.zookeeper && c.engine !== 'zookeeper') out.push({ path: ['zookeeper'], message: `expected no zookeeper: section with engine: ${c.engine} (it is used by engine: zookeeper only)` });
  const e = c.etcd;
  if (e) {
    const ka = etcdKeepAliveMs(e);
    const usable = e.ttlSec * 1000 * (1 - e.driftRate) - e.marginMs;
    if (usable < 2 * ka) out.push({ path: ['etcd', e.keepAliveMs !== undefined ? 'keepAliveMs' : 'ttlSec'], message: `expected at least two renewals (keepAliveMs ${ka}) inside the window ttlSec·(1 − driftRate) − marginMs = ${Math.round(usable)} ms: raise ttlSec or lower keepAliveMs/marginMs` });
    if (e.password !== undefined && e.passwordFile !== undefined) out.push({ path: ['etcd', 'passwordFile'], message: 'expected at most one of etcd.password or etcd.passwordFile' });
    if ((e.password !== undefined || e.passwordFile !== undefined) && e.username === undefined) out.push({ path: ['etcd', 'username'], message: 'missing: a password needs etcd.username' });
    const https = e.endpoints.filter((u) => u.startsWith('https:')).length;
    if (https !== 0 && https !== e.endpoints.length) out.push({ path: ['etcd', 'endpoints'], message: 'expected all endpoints http:// or all https:// (etcd3 cannot mix them)' });
    if (e.tls && https === 0) out.push({ path: ['etcd', 'tls'], message: 'expected https:// endpoints with a tls: section' });
    if (e.tls && (e.tls.certFile === undefined) !== (e.tls.keyFile === undefined)) out.push({ path: ['etcd', 'tls'], message: 'expected both certFile and keyFile, or neither' });
  }
  const zc = c.zookeeper;
  if (zc) {
    const probe = zkProbeMs(zc);
    const usable = zc.sessionTimeoutMs * (1 - zc.driftRate) - zc.serverLagMs - probe - zc.marginMs;
    if (usable < 2 * probe) {
      out.push({
        path: ['zookeeper', 'sessionTimeoutMs'],
        message: `expected a session timeout long enough for the safety window: sessionTimeoutMs·(1 − driftRate) − serverLagMs − probeMs − marginMs = ${Math.round(usable)} ms must hold two probes (probeMs ${probe}); raise sessionTimeoutMs (and the ensemble's maxSessionTimeout) or lower the ensemble's syncLimit × tickTime`,
      });
    }
    if (zc.tls) out.push({ path: ['zookeeper', 'tls'], message: 'not supported: node-zookeeper-client speaks plain TCP only; reach the ensemble through a TLS tunnel (e.g. stunnel) on the board, or use engine: etcd' });
    if (zc.password !== undefined && zc.passwordFile !== undefined) out.push({ path: ['zookeeper', 'passwordFile'], message: 'expected at most one of zookeeper.password or zookeeper.passwordFile' });
    if ((zc.password !== undefined || zc.passwordFile !== undefined) && zc.username === undefined) out.push({ path: ['zookeeper', 'username'], message: 'missing: a password needs zookeeper.username' });
  }
  return out;
}
