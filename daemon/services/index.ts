/**
 * Service discovery as a node runs it: the registry over the node's KV, its HTTP
 * endpoints, and (when configured) the DNS interface and mDNS announcements, started
 * and stopped together by startNode / startExternalNode. The embeddable API is the
 * `ServicesApi` a running node exposes as `node.services`.
 */
import type { ServicesConfig } from '../config/services.ts';
import { parseListen } from '../config/plain.ts';
import { handleServices } from './http.ts';
import { ServiceError, ServiceRegistry, type Catalog, type KvPort, type RegistryLog } from './registry.ts';
import { parseInstanceDef, type Health, type InstanceView } from './catalog.ts';
// The DNS and mDNS interfaces (and dns-packet, multicast-dns) load only when configured.
import type { DnsServer } from './dns.ts';
import type { MdnsResponder } from './mdns.ts';

export interface ServiceRegistration {
  name: string;
  instance: string;
  address: string;
  port: number;
  tags?: string[];
  meta?: Record<string, string>;
  /** {ttl: '10s'} | {http: URL, interval?, timeout?} | {tcp: 'host:port', interval?, timeout?} | {script: [argv], interval?, timeout?} */
  check?: Record<string, unknown>;
}

/** The embeddable API of service discovery (`node.services`). Rejects with ServiceError / CatalogError. */
export interface ServicesApi {
  register(r: ServiceRegistration): Promise<{ index: number; health: Health }>;
  deregister(name: string, instance: string): Promise<{ index: number }>;
  /** A TTL heartbeat (on the node that registered the instance). */
  pass(name: string, instance: string, note?: string): Promise<{ health: Health }>;
  /** The instances (of `name`, filtered) and the catalog's index. */
  list(opts?: { name?: string; healthy?: boolean; tags?: string[]; stale?: boolean }): Promise<{ index: number; instances: InstanceView[] }>;
  /** Blocks until the catalog's index passes `index` (or `waitMs`), then lists like list(). */
  watch(index: number, waitMs: number, opts?: { name?: string; healthy?: boolean; tags?: string[] }): Promise<{ index: number; instances: InstanceView[] }>;
  /** The registry itself (stats, cached catalog). */
  registry: ServiceRegistry;
}

export interface RunningServices {
  api: ServicesApi;
  http: { registry: ServiceRegistry; handle: typeof handleServices };
  dns: DnsServer | undefined;
  mdns: MdnsResponder | undefined;
  stop(): Promise<void>;
}

const pick = (c: Catalog, o: { name?: string; healthy?: boolean; tags?: string[] }) => ({
  index: c.index,
  instances: c.instances.filter((v) => (o.name === undefined || v.name === o.name) && (!o.healthy || v.health !== 'critical') && (o.tags ?? []).every((t) => v.tags.includes(t))),
});

export async function startServices(kv: KvPort, o: { self: string; cluster: string; config: ServicesConfig; log: RegistryLog & { warn(f: Record<string, unknown>, m: string): void }; env?: Record<string, string> }): Promise<RunningServices> {
  const registry = new ServiceRegistry(kv, { self: o.self, nodeTtlMs: o.config.nodeTtlMs, scriptChecks: o.config.scriptChecks, log: o.log, ...(o.env ? { env: o.env } : {}) });
  registry.start();
  let dns: DnsServer | undefined;
  let mdns: MdnsResponder | undefined;
  try {
    if (o.config.dns) {
      const l = parseListen(o.config.dns.listen);
      if (!l) throw new Error(`services.dns.listen: expected host:port, got ${o.config.dns.listen}`);
      const { startDns } = await import('./dns.ts');
      dns = await startDns({ host: l.host, port: l.port, cluster: o.cluster, ttlSec: o.config.dns.ttlSec, udpRate: o.config.dns.udpRate, catalog: () => registry.cached(), log: o.log });
      o.log.info({ dns: `${l.host}:${dns.port}`, zone: `service.${o.cluster}.quorumd` }, 'services: DNS interface listening');
    }
    if (o.config.mdns) {
      const { startMdns } = await import('./mdns.ts');
      const m = startMdns({ ttlSec: o.config.mdns.ttlSec, ...(o.config.mdns.interface ? { interface: o.config.mdns.interface } : {}), catalog: () => registry.cached(), log: o.log });
      mdns = m;
      // One announcement for a run of changes: a node that starts with 300 instances in
      // its log saw ~300 catalog changes in one go, and each announce() rebuilds the
      // records of the whole catalog (~1,200) to find what changed.
      let queued: NodeJS.Immediate | undefined;
      registry.onChange(() => {
        queued ??= setImmediate(() => {
          queued = undefined;
          m.announce();
        });
      });
    }
  } catch (err) {
    registry.stop();
    await dns?.close();
    throw new Error(`services.dns: ${(err as Error).message}`);
  }
  const api: ServicesApi = {
    registry,
    register: (r) => registry.register(parseInstanceDef(r.name, r.instance, { address: r.address, port: r.port, tags: r.tags, meta: r.meta, check: r.check }), { operator: true }),
    deregister: (name, instance) => registry.deregister(name, instance),
    pass: (name, instance, note) => registry.pass(name, instance, note),
    list: async (f = {}) => pick(await registry.list({ stale: f.stale ?? false }), f),
    watch: async (index, waitMs, f = {}) => pick(await registry.watch(index, waitMs), f),
  };
  return {
    api,
    http: { registry, handle: handleServices },
    dns,
    mdns,
    stop: async () => {
      registry.stop();
      await dns?.close();
      await mdns?.close();
    },
  };
}

export { ServiceError };
