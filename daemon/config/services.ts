/**
 * The `services:` section (service discovery, daemon/services): every key documented
 * at its declaration. Service discovery is on for every engine with a replicated KV
 * (all but bully); its DNS interface and mDNS announcements are off by default.
 */
import { int } from './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';

export const servicesSchema = () => z.strictObject({
  /**
   * A node that owns instances renews its liveness every nodeTtlMs / 3; when it was
   * silent for nodeTtlMs the active leader removes its instances. Default 10000: a
   * crashed board's instances are gone within ~10-15 s; every owner writes one small
   * record every ~3.3 s while it owns instances (nothing while it owns none).
   */
  nodeTtlMs: int('milliseconds', 300, 3_600_000).default(10_000),
  /**
   * Allow script checks (a program the registering node runs, registered by an
   * operator credential). Default false: a registration must not run programs on a
   * board unless its owner said so.
   */
  scriptChecks: z.boolean({ error: 'expected scriptChecks: true or false' }).default(false),
  /**
   * DNS interface (off by default): SRV and A/AAAA answers for
   * <name>.service.<cluster>.quorumd and <instance>.<name>.service.<cluster>.quorumd,
   * healthy instances only, over UDP — point a resolver's forwarding for that zone at it
   * (like Consul's port 8600).
   */
  dns: z
    .strictObject({
      /** host:port to listen on, UDP. Default 127.0.0.1:8600. */
      listen: z.string({ error: 'expected host:port' }).regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:8600' }).default('127.0.0.1:8600'),
      /** TTL of the answers, seconds. Default 5: resolvers ask again soon after a change. */
      ttlSec: int('seconds', 0, 3600).default(5),
      /**
       * Full UDP answers per source address (a token bucket each): past the rate a source
       * gets TC-only "slips" about the size of its query, so that a forged source address
       * cannot turn the port into an amplifier; real resolvers retry over TCP, which is
       * not limited. The defaults serve a resolver that forwards a whole board's lookups.
       */
      udpRate: z
        .strictObject({
          /** Answers a second, sustained. Default 50. */
          perSec: int('answers a second', 1, 100_000).default(50),
          /** Answers above the rate a source may draw at once. Default 100. */
          burst: int('answers', 1, 100_000).default(100),
          /**
           * Source addresses whose rate is tracked, least recently seen forgotten first
           * (a forgotten source starts with a full burst again). Default 4096; each costs
           * ~150 bytes, so the bound keeps a flood of forged sources to a few MB.
           */
          sources: int('addresses', 1, 65_536).default(4096),
        })
        .prefault({}),
    })
    .optional(),
  /**
   * mDNS/DNS-SD announcement of healthy instances on the LAN (_<name>._tcp.local), for
   * devices that only speak Bonjour. Off by default.
   */
  mdns: z
    .strictObject({
      /** Network interface address to announce on (default: the system's choice). */
      interface: z.string({ error: 'expected an interface address' }).optional(),
      /** TTL of the records, seconds. Default 120 (RFC 6762's host records). */
      ttlSec: int('seconds', 1, 4500).default(120),
    })
    .optional(),
});

export type ServicesConfig = z.infer<ReturnType<typeof servicesSchema>>;
