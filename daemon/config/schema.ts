/**
 * The node configuration file (`quorumd start --config node.yaml`): its schema, with
 * every key documented here at its declaration (default and why), and its loader.
 *
 * Every problem in a file is reported as `<file>:<line>:<col>: <key.path>: <what was
 * expected>` (see load.ts); `quorumd config validate FILE` prints them and exits 2.
 * docs/config.md is the user-facing page; examples/ has two commented files.
 *
 * Every schema here (and in fencing.ts, jobs.ts, external.ts, services.ts) is a function
 * that builds it afresh: a node parses its config once at start, and the ~1,000 zod
 * objects of the whole tree, kept in module constants, held 1.2 MiB of a node's heap for
 * its whole life (a heap snapshot of an idle node, issue 14). Built in a call, they are
 * garbage once the config is parsed.
 */
import { int } from './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';
import { bullyPriority, isLoopback, parseKey, parseListen } from './plain.ts';
import { checkBullyFencing, checkExternalFencing, checkFencing, checkPbftFencing, fencingSchema } from './fencing.ts';
import { jobsSchema } from './jobs.ts';
import { checkExternal, etcdSchema, zookeeperSchema } from './external.ts';
import { servicesSchema } from './services.ts';

/** Names of nodes and clusters: short, safe in topics, file names and logs. */
const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const name = (what: string) =>
  z.string({ error: `expected a ${what} name (string)` }).regex(NAME, {
    error: `expected a ${what} name of 1-32 characters a-z, 0-9 and '-', starting with a letter or digit`,
  });

const bool = (what: string) => z.boolean({ error: `expected ${what}: true or false` });

/**
 * A secret key: `hex:<64 hex digits>` style is accepted as plain hex (32..128 hex
 * digits = 16..64 bytes) or `base64:<...>`. 16 bytes is the floor of the HMAC tag
 * (src/wire/tag.ts); generate one with `openssl rand -hex 32`.
 */
const keyText = () => z
  .string({ error: 'expected a key: 32-128 hex digits or base64:<16-64 bytes>' })
  .refine((s) => parseKey(s) !== undefined, {
    error: 'expected a key: 32-128 hex digits (16-64 bytes, e.g. from `openssl rand -hex 32`) or base64:<16-64 bytes>',
  });

const member = () => z.strictObject({
  /** Wire id 1..254 (small on the wire, docs/wire.md). Same on every node's config. */
  id: int('a node id', 1, 254),
  /** Human name, for logs, status tables and hooks. */
  name: name('member'),
  /**
   * `voter` (default): votes and may lead. `witness`: votes, never leads, holds no
   * data (docs/fencing.md) — the third vote of a two-board cluster (engines raft,
   * paxos, zab; a priority-0 member under bully). `observer` (engine zab only,
   * ZooKeeper's observers): receives and applies every committed write, serves reads,
   * never votes, never counts in a quorum, never leads — more readers without slower
   * writes or elections (docs/engines.md).
   */
  role: z.enum(['voter', 'witness', 'observer'], { error: 'expected "voter", "witness" or "observer"' }).default('voter'),
  /**
   * Bully engine only: the member's priority, higher wins (src/bully/options.ts).
   * Default: its 1-based position in this list (the last member is the preferred
   * coordinator); a witness defaults to 0 = never coordinates. Priorities of members
   * that can coordinate must be distinct. Same on every node's config.
   */
  priority: int('a priority', 0, 0xffffffff).optional(),
});

const listen = () => z
  .string({ error: 'expected host:port, e.g. 127.0.0.1:7071' })
  .refine((s) => parseListen(s) !== undefined, { error: 'expected host:port with a port 0..65535, e.g. 127.0.0.1:7071 or [::1]:7071' });

const brokerUrl = () => z
  .string({ error: 'expected a broker URL mqtt://host:port or mqtts://host:port' })
  .regex(/^mqtts?:\/\/[^\s/@]+(:\d{1,5})?\/?$/, { error: 'expected a broker URL mqtt://host[:port] or mqtts://host[:port] (credentials go in username/password)' });

const mqtt = () => z.strictObject({
  /** One or more brokers; every frame goes through every connected one (hal/mqtt/link.ts). Required. */
  brokers: z.array(brokerUrl(), { error: 'expected a list of broker URLs' }).min(1, { error: 'expected at least one broker URL' }).max(8, { error: 'expected at most 8 brokers' }),
  /** Broker credentials. Default: anonymous. Prefer passwordFile so the config can be world-readable. */
  username: z.string({ error: 'expected a string' }).optional(),
  password: z.string({ error: 'expected a string' }).optional(),
  passwordFile: z.string({ error: 'expected a file path' }).optional(),
  /**
   * MQTT keepalive, seconds. Default 5: the broker publishes the Last Will of a node
   * whose board died silently after 1.5 × keepalive (7.5 s); a crashed process is
   * reported at once because its socket closes. A silent death is found sooner by the
   * election timeout (1..2 s by default).
   */
  keepaliveSec: int('seconds', 1, 65535).default(5),
  /**
   * Which frames go through the brokers. `always`: every frame, also beside a `tcp:`
   * link (the receiver drops the second copy). `fallback`: only frames for a peer that
   * the `tcp:` link cannot send to right now (its connection down), so while TCP is up
   * the brokers carry presence and wills only — the failover hint — and no broker CPU
   * is spent per write. Default `fallback` with a `tcp:` section (docs/config.md "Direct
   * TCP" has the measurement), else `always` (the only value without `tcp:`: a serial
   * link cannot tell whether its wire reaches the peer).
   */
  frames: z.enum(['always', 'fallback'], { error: 'expected "always" (every frame through the brokers too) or "fallback" (only frames the tcp: link cannot carry now)' }).optional(),
  /** TLS for mqtts:// brokers: PEM files. Default: Node's root CAs, no client cert. */
  tls: z
    .strictObject({
      caFile: z.string({ error: 'expected a file path' }).optional(),
      certFile: z.string({ error: 'expected a file path' }).optional(),
      keyFile: z.string({ error: 'expected a file path' }).optional(),
      /** Default true; false only for a lab broker with a throwaway certificate. */
      rejectUnauthorized: bool('rejectUnauthorized').default(true),
    })
    .optional(),
});

/**
 * One serial link (hal/serial/link.ts; docs/serial.md has wiring and kernel setup).
 * Exactly one of `peer` (a point-to-point null-modem wire to one node) or `bus` (an
 * RS-485 multi-drop bus shared by several nodes, TDMA slots by node id). A node may
 * list several serial links and an `mqtt:` section at once: every frame goes out on
 * every link that reaches its destination, and the receiver drops the copies by the
 * sender's sequence number (replay window, src/wire/auth.ts).
 */
const serial = () => z.strictObject({
  /** Device, e.g. /dev/serial0 (the Pi's UART) or /dev/ttyUSB0. Required. */
  path: z.string({ error: 'expected a device path such as /dev/serial0' }).min(1, { error: 'expected a device path such as /dev/serial0' }),
  /** Point-to-point: the node at the other end of this wire. Exactly one of peer / bus. */
  peer: int('a node id', 1, 254).optional(),
  /** RS-485 bus: the drops on it and the slot timing (hal/serial/tdma.ts explains the slot math). */
  bus: z
    .strictObject({
      /** Every node on the bus, this one included (ids of members). Required, at least 2. */
      members: z.array(int('a node id', 1, 254), { error: 'expected a list of node ids' }).min(2, { error: 'expected at least 2 node ids on a bus' }).max(7, { error: 'expected at most 7 node ids' }),
      /**
       * Guard time per TDMA slot, ms. Default 10: a USB-serial adapter's latency plus
       * timer jitter of a loaded Pi; raise it on slow adapters. The same on every drop.
       */
      guardMs: int('milliseconds', 0, 1000).default(10),
    })
    .optional(),
  /** Line speed. Default 115200: reliable on the Pi's PL011 UART over a few metres. The same at both ends. */
  baudRate: int('a baud rate', 1200, 4_000_000).default(115200),
  /**
   * Largest frame on this link, bytes before SLIP. Default 1024 (docs/wire.md: 1 KiB on
   * serial): at 115200 baud a full frame takes ~90-180 ms, and on a bus it sets the
   * slot length. The node's largest message is the smallest maxFrame of its links.
   * The same on every drop of a bus.
   */
  maxFrame: int('bytes', 128, 65536).default(1024),
});

/**
 * A direct TCP link between nodes on one LAN (hal/tcp/link.ts): no broker hop. Every
 * node listens on its own address and dials the others; the same authenticated frames as
 * on MQTT and serial, and a handshake that proves the cluster key. Frames go out on every
 * link that reaches the destination. No Last Will of its own: alone, a dead leader is
 * found by the election timeout; with an `mqtt:` section beside it the broker's will
 * counts once this link's connections to that node are closed too (docs/mqtt.md,
 * "Beside a direct TCP link"), and the brokers carry frames only as a fallback
 * (`mqtt.frames`).
 */
const tcp = () => z.strictObject({
  /**
   * Where each node listens, this node's own entry included: `{ id, address: host:port }`.
   * The same list on every node. Required, this node and at least one other.
   */
  peers: z
    .array(
      z.strictObject({
        id: int('a node id', 1, 254),
        address: z.string({ error: 'expected host:port, e.g. 10.0.0.12:7400' }).refine((s) => { const l = parseListen(s); return l !== undefined && l.port > 0; }, { error: 'expected host:port with a port 1..65535, e.g. 10.0.0.12:7400' }),
      }),
      { error: 'expected a list of { id, address: host:port }' },
    )
    .min(2, { error: 'expected this node and at least one other' })
    .max(7, { error: 'expected at most 7 entries' }),
  /** Listen here instead of this node's own `peers` address (e.g. 0.0.0.0:7400). */
  listen: listen().optional(),
  /** Largest frame on this link, bytes. Default 65536 (the wire default). */
  maxFrame: int('bytes', 1024, 1_048_576).default(65536),
  /** A connection must prove the key within this, ms (slowloris bound). Default 2000. */
  helloTimeoutMs: int('milliseconds', 50, 60_000).default(2000),
  /**
   * Accepted connections still in their handshake at once (each holds a descriptor for at
   * most helloTimeoutMs). Default 16. At the bound a newcomer closes the oldest of them
   * from the address that holds the most (quorumd_link_errors_total{kind="evictedPending"}),
   * so a host holding them all with silent connections mostly closes its own. Raise it
   * when many hosts that are no peers share an address with the peers (a NAT) and
   * connect here. At least the number of the other nodes in `peers`: after a power cut
   * they all dial at once, and with fewer slots one's handshake is closed for another's.
   */
  maxPending: int('connections', 1, 1024).default(16),
});

/**
 * Board timing defaults (Raft and bully alike): heartbeat 100 ms, failure detection after
 * about a second of silence — etcd's defaults (heartbeat-interval 100 ms, election-timeout
 * 1000 ms; etcd docs "Tuning"). The engine's own defaults (src/raft/config.ts, 150..300 ms,
 * the paper's range) suit the simulator, where nothing stalls; a real board shares two
 * cores with other work, sits behind a broker in another process, and stalls for a few
 * hundred ms at times (a GC pause, a slow SD card, SIGSTOP, a busy neighbour). With
 * 150..300 ms a 200 ms stall of the leader is an election; with 1000..2000 ms it takes
 * five lost heartbeats in a row. Failover after a crash does not wait for these timeouts:
 * the broker publishes the dead process's Last Will at once and the followers campaign
 * on it (campaignOnPeerGone). Only a silent death (power cut, cable pulled) waits out the
 * election timeout, or the will after 1.5 × mqtt.keepaliveSec, whichever comes first.
 * docs/config.md ("Timing on a board") has the reasoning and the measured figures.
 */
const BOARD_HEARTBEAT_MS = 100;
const BOARD_FAILURE_MIN_MS = 1000;

const raft = () => z.strictObject({
  /** Engine tick, ms. Default 10 (src/raft/config.ts explains). */
  tickMs: int('milliseconds', 1, 1000).default(10),
  /**
   * Election timeout range, ms. Default 1000..2000 (see the board timing note above:
   * etcd's 1000 ms, spread over a factor of two as in Raft §5.2 so that split votes
   * stay rare). Raise both on serial links with large frames (a 1 KiB frame at 115200
   * baud takes ~90 ms) or on Wi-Fi.
   */
  electionTimeoutMinMs: int('milliseconds', 10, 60_000).default(BOARD_FAILURE_MIN_MS),
  electionTimeoutMaxMs: int('milliseconds', 11, 120_000).default(2 * BOARD_FAILURE_MIN_MS),
  /** Leader heartbeat, ms. Default 100 (etcd's): a tenth of the minimum election timeout, so a stall or a lost heartbeat or two never starts an election. */
  heartbeatMs: int('milliseconds', 1, 30_000).default(BOARD_HEARTBEAT_MS),
  /** Pre-vote (thesis §9.6). Default true; keep it: it makes the fast failover below safe. */
  preVote: bool('preVote').default(true),
  /** Check-quorum (thesis §6.2). Default true: a cut-off leader steps down, clients get 503. */
  checkQuorum: bool('checkQuorum').default(true),
  /**
   * Campaign at once when the link reports the leader gone (its MQTT Last Will, or
   * its goodbye when it stopped without finishing its hand-over: docs/mqtt.md) instead
   * of waiting out the election timeout. Default true. Safe because of
   * pre-vote: if the leader is in fact alive, its followers refuse. With fencing (lease
   * reads) too: the leader stops counting older heartbeat rounds toward its lease when
   * its broker session ends, and a will the broker sends after a keepalive timeout
   * comes after the silent leader's lease ran out (checked below; docs/mqtt.md).
   */
  campaignOnPeerGone: bool('campaignOnPeerGone').default(true),
});

/**
 * Bully engine options (`engine: bully`). Defaults and reasons are documented at the
 * engine's declaration, src/bully/options.ts (BullyOptions); repeated here in short.
 */
const bully = () => z.strictObject({
  /** Engine tick, ms. Default 10. */
  tickMs: int('milliseconds', 1, 1000).default(10),
  /** Coordinator re-announcement period, ms. Default 100, the Raft heartbeat (board timing note above; followers never reply: n−1 small messages per period, plus, with a fencing: section, a report from each follower every 200 ms and its answer: docs/fencing.md). */
  heartbeatMs: int('milliseconds', 1, 30_000).default(BOARD_HEARTBEAT_MS),
  /**
   * A follower that heard no announcement for a time drawn in [min, max) starts an
   * election, ms. Default 1000..1500: ten lost announcements, the Raft election timeout's
   * floor (bully has no pre-vote, so a needless election here is a real change of
   * coordinator, with hooks and a fence).
   */
  failureTimeoutMinMs: int('milliseconds', 2, 60_000).default(BOARD_FAILURE_MIN_MS),
  failureTimeoutMaxMs: int('milliseconds', 3, 120_000).default(1500),
  /**
   * How long a candidate waits for an Answer from above before it announces itself, ms.
   * Default 200: a round trip through a broker on a loaded board, with room for a stall;
   * too short and a lower board announces itself while the higher one is merely slow
   * (one extra epoch). Raise on serial links.
   */
  answerTimeoutMs: int('milliseconds', 1, 60_000).default(200),
  /** After an Answer, how long to wait for the announcement before a new election, ms. Default 600 (the higher board's own answer timeout, twice, plus margin); must exceed answerTimeoutMs. */
  coordinatorWaitMs: int('milliseconds', 2, 120_000).default(600),
  /** A returning higher-priority board takes over (default true); false = keepalived's nopreempt (one failover less, the older coordinator stays). */
  preempt: bool('preempt').default(true),
  /** Start an election at once when the link reports the coordinator gone (its MQTT Last Will). Default true: bully needs no vote, so there is no split vote to avoid. */
  campaignOnPeerGone: bool('campaignOnPeerGone').default(true),
});

/**
 * Multi-Paxos engine options (`engine: paxos`, src/paxos/options.ts documents each with
 * its reason; repeated here in short). Run by the engine runtime (daemon/runtime/engine-node.ts).
 */
const paxos = () => z.strictObject({
  /** Engine tick, ms. Default 10. */
  tickMs: int('milliseconds', 1, 1000).default(10),
  /**
   * A follower that hears no leader for a time drawn in [min, max) runs phase 1 with a new
   * ballot, ms. Default 1000..2000: the board defaults Raft uses (docs/config.md, "Timing on
   * a board"); the engine's own 150..300 is for the simulator, where nothing stalls.
   */
  electionTimeoutMinMs: int('milliseconds', 10, 60_000).default(1000),
  electionTimeoutMaxMs: int('milliseconds', 11, 120_000).default(2000),
  /** Leader heartbeat (commit learning, read rounds), ms. Default 100 (board default, as Raft's). */
  heartbeatMs: int('milliseconds', 1, 30_000).default(100),
  /** Pre-prepare (Paxos' pre-vote): a cut-off node does not raise ballots. Default true. */
  prePrepare: bool('prePrepare').default(true),
  /** Check-quorum: a leader that heard from no quorum within a minimum election timeout steps down. Default true. */
  checkQuorum: bool('checkQuorum').default(true),
  /** Campaign at once (survivors in id order) when the link reports the leader gone (MQTT Last Will). Default true. */
  campaignOnPeerGone: bool('campaignOnPeerGone').default(true),
});

/**
 * ZAB engine options (`engine: zab`, src/zab/options.ts documents each with its reason).
 * Run by the engine runtime (daemon/runtime/engine-node.ts).
 */
const zab = () => z.strictObject({
  /** Engine tick, ms. Default 10. */
  tickMs: int('milliseconds', 1, 1000).default(10),
  /** Leader ping (commit learning, liveness), ms. Default 100 (board default, as Raft's heartbeat). */
  heartbeatMs: int('milliseconds', 1, 30_000).default(100),
  /**
   * A follower that hears nothing from its leader this long goes back to election
   * (ZooKeeper's syncLimit), ms. Default 1000: ten lost pings, as Raft's board election
   * timeout (docs/config.md, "Timing on a board"); the engine's own 150 is for the simulator.
   */
  syncLimitMs: int('milliseconds', 10, 60_000).default(1000),
  /** Longest discovery + synchronization before a prospective leader gives up (ZooKeeper's initLimit), ms. Default 2000. */
  initLimitMs: int('milliseconds', 10, 600_000).default(2000),
  /** Campaign at once (survivors in id order) when the link reports the leader gone (MQTT Last Will). Default true. */
  campaignOnPeerGone: bool('campaignOnPeerGone').default(true),
});

/**
 * PBFT engine options (`engine: pbft`, src/pbft/options.ts documents each with its
 * reason). Run by the engine runtime (daemon/runtime/engine-node.ts, pbft-host.ts).
 */
const pbft = () => z.strictObject({
  /** Engine tick, ms. Default 10. */
  tickMs: int('milliseconds', 1, 1000).default(10),
  /**
   * A backup whose known request does not execute this long suspects the primary
   * (doubles per fruitless view change), ms. Default 4000, the board default (docs/config.md,
   * "Timing on a board"); the engine's own 1000 is for the simulator. A crashed primary's
   * MQTT will still makes the backups suspect it within one retransmission period.
   */
  viewChangeTimeoutMs: int('milliseconds', 10, 600_000).default(4000),
  /** Cap of the doubling view-change timeout, ms. Default 60000. */
  maxViewChangeTimeoutMs: int('milliseconds', 10, 3_600_000).default(60_000),
  /** Retransmission of own requests, PRE-PREPAREs and VIEW-CHANGEs, ms. Default 200. */
  retransmitMs: int('milliseconds', 1, 60_000).default(200),
  /** STATUS to every peer (catch-up), ms. Default 1000. */
  statusMs: int('milliseconds', 10, 600_000).default(1000),
  /** K: a checkpoint (snapshot, signed digest) every K requests. Default 32. */
  checkpointInterval: int('requests', 1, 65_536).default(32),
  /**
   * This board's Ed25519 private key file (PEM PKCS#8 or base64 of the 32-byte seed),
   * mode 0600. With publicKeys; without both, every member's key pair is derived from
   * the cluster key (daemon/runtime/pbft-host.ts says what that does not protect against).
   */
  privateKey: z.string({ error: 'expected the path of this board\'s Ed25519 private key file' }).min(1, 'expected a file path').optional(),
  /** Every member's Ed25519 public key file (PEM SPKI or base64 of 32 raw bytes), by member name; this board's included. */
  publicKeys: z.record(z.string(), z.string({ error: 'expected the path of the member\'s Ed25519 public key file' }).min(1, 'expected a file path'), { error: 'expected a mapping of member name to public key file' }).optional(),
});

const hooks = () => z.strictObject({
  /**
   * Command run (through /bin/sh -c) when this node becomes the *active* leader (with a
   * `fencing:` section: once the activation gate opens, docs/fencing.md).
   * Its environment has QUORUMD_TERM, QUORUMD_TOKEN (fencing token of the epoch),
   * QUORUMD_NODE (this node's name), QUORUMD_EVENT and QUORUMD_API_URL (this node's API). Default: none.
   */
  onActive: z.string({ error: 'expected a shell command (string)' }).optional(),
  /** Command run when this node stops being the active leader (lease lost, stepped down, stopping; same environment). Default: none. */
  onInactive: z.string({ error: 'expected a shell command (string)' }).optional(),
  /** A hook still running after this many ms is killed (SIGTERM, then SIGKILL 2 s later). Default 10000. */
  timeoutMs: int('milliseconds', 100, 600_000).default(10_000),
});

/** An extra API credential (daemon/http/auth.ts): a name, a scope and the file holding its token. */
const apiToken = () => z.strictObject({
  /** Shown in logs and 403 answers, never the token. */
  name: z.string({ error: 'expected a credential name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected a credential name of 1-64 characters A-Z a-z 0-9 . _ -' }),
  /** read (GET everything), write (+ KV writes, locks), operator (+ fence, fence confirm, jobs control, transfer). */
  scope: z.enum(['read', 'write', 'operator'], { error: 'expected "read", "write" or "operator"' }),
  /** File holding the token (at least 16 characters; mode 0600: group and others may not read it). */
  tokenFile: z.string({ error: 'expected a file path' }),
});

const http = () => z.strictObject({
  /**
   * Address of the HTTP API. Default 127.0.0.1:7071: only this board can reach it.
   * Any other address requires `tls` (a bearer token must not cross a LAN in clear).
   */
  listen: listen().default('127.0.0.1:7071'),
  /**
   * The operator credential (full access). Default: `<node.dataDir>/api.token`, created
   * at the first start (mode 0600) and logged; `quorumd` finds it there by itself.
   * Every request needs a credential, also on loopback (docs/security.md).
   */
  token: z.string({ error: 'expected a string of at least 16 characters' }).min(16, { error: 'expected a token of at least 16 characters' }).optional(),
  tokenFile: z.string({ error: 'expected a file path' }).optional(),
  /** More credentials with narrower scopes, e.g. a read token for monitoring. Default: none. */
  tokens: z.array(apiToken(), { error: 'expected a list of {name, scope, tokenFile}' }).max(64, { error: 'expected at most 64 tokens' }).default([]),
  /** HTTPS: PEM certificate and key files; with clientCaFile, clients must present a certificate it signed. Default: plain HTTP (loopback only). */
  tls: z
    .strictObject({
      certFile: z.string({ error: 'expected a file path' }),
      keyFile: z.string({ error: 'expected a file path' }),
      clientCaFile: z.string({ error: 'expected a file path' }).optional(),
    })
    .optional(),
  /** Largest request body, bytes; larger get 413. Default 65536 (a value is at most 63 KiB, src/kv/commands.ts). */
  maxBodyBytes: int('bytes', 1, 16 * 1024 * 1024).default(65536),
  /** Longest `wait=` of a watch, ms. Default 300000 (5 min): bounds how long a socket is held. */
  maxWatchMs: int('milliseconds', 1, 3_600_000).default(300_000),
  /** Time a forwarded or proposed request may take before it is answered 504, ms. Default 5000. */
  requestTimeoutMs: int('milliseconds', 10, 600_000).default(5000),
  /** A connection that has not sent a whole request header within this is destroyed, ms. Default 10000. */
  headersTimeoutMs: int('milliseconds', 100, 600_000).default(10_000),
  /**
   * Connections one client address may hold at once; more are closed at accept (the client
   * sees a reset). Default 128: room for an application's pool of 64 (a watch holds one
   * too) beside the tools on the same host — `quorumd dev` keeps a connection to each node,
   * the CLI opens one per call. At 64, a pool of 64 beside `quorumd dev` had ~140
   * connections a second refused and reopened. The server takes at most 1024 in all.
   */
  maxConnectionsPerAddress: int('connections', 1, 65_536).default(128),
  /**
   * Watches (`?watch=` on /v1/kv and /v1/services together) one client address may hold
   * open at once; more are answered 429 too-many-watches and their connection closes.
   * Default half of maxConnectionsPerAddress (64 of 128). A watch holds its connection for
   * up to its wait (maxWatchMs, 5 min), and a connection with a request in progress is
   * never closed to make room; without this bound one read token could fill
   * all of 127.0.0.1's connections with watches, and every other application of the
   * board would be kept out of the API for minutes. The other half stays for requests
   * that end within a request timeout. At most maxConnectionsPerAddress.
   */
  maxWatchesPerAddress: int('watches', 1, 65_536).optional(),
});

/**
 * Cluster-wide quotas of the replicated state (src/kv/quota.ts), enforced by the leader:
 * a write past them answers 507 quota-exceeded. Set the same on every node (the
 * leader's apply). The defaults keep a node under the shipped systemd unit's
 * MemoryMax=256M with the quota full, also after a restart (docs/security.md).
 */
const kv = () => z.strictObject({
  /** Keys plus lock records. Default 10000. */
  maxKeys: int('keys', 1, 10_000_000).default(10_000),
  /** Bytes of keys, values, lock names and owners. Default 16777216 (16 MiB). */
  maxBytes: int('bytes', 1024, 4 * 1024 * 1024 * 1024).default(16 * 1024 * 1024),
});

const log = () => z.strictObject({
  /** Lowest level written (pino's level names; daemon/log.ts). Default info: role changes, elections, hooks, errors; no per-request lines. */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'expected one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
});

export const configSchema = () => z
  .strictObject({
    cluster: z.strictObject({
      /** Human name of the cluster (logs, status). Required. */
      name: name('cluster'),
      /** Wire cluster id 0..65535: frames of another cluster on the same broker are dropped. Default 1. */
      id: int('a cluster id', 0, 65535).default(1),
      /** Shared HMAC key (docs/wire.md). Exactly one of key / keyFile. */
      key: keyText().optional(),
      keyFile: z.string({ error: 'expected a file path' }).optional(),
      /** The previous key during a rotation (accepted, never used to send). Default: none. At most one of previousKey / previousKeyFile. */
      previousKey: keyText().optional(),
      previousKeyFile: z.string({ error: 'expected a file path' }).optional(),
    }),
    /** Every member of the cluster; the same list on every node. */
    members: z
      .array(member(), { error: 'expected a list of members ({id, name, role})' })
      .min(1, { error: 'expected at least one member' })
      .max(7, { error: 'expected at most 7 members' }),
    node: z.strictObject({
      /** Which member this file configures (its name). Required. */
      name: name('member'),
      /** Where the log, hard state and snapshots live (fsynced). Required; the directory is created. */
      dataDir: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }),
    }),
    /**
     * Election engine. Default raft: replicated KV and locks, majority quorum. bully:
     * "who is the primary" by priority, no quorum (docs/engines.md compares them); KV
     * and lock requests then answer 501 engine-unsupported. etcd / zookeeper: no quorum
     * among the boards; they elect and keep their state through a service the site
     * runs (the `etcd:` or `zookeeper:` section; no links needed).
     */
    engine: z.enum(['raft', 'bully', 'paxos', 'zab', 'pbft', 'etcd', 'zookeeper'], { error: 'expected "raft", "bully", "paxos", "zab", "pbft", "etcd" or "zookeeper"' }).default('raft'),
    raft: raft().prefault({}),
    bully: bully().prefault({}),
    /** engine: paxos — Multi-Paxos options (KV, locks, jobs, fencing and witnesses as under Raft). */
    paxos: paxos().prefault({}),
    /** engine: zab — ZooKeeper's atomic broadcast options (KV, locks, jobs, fencing and witnesses as under Raft; observers). */
    zab: zab().prefault({}),
    /** engine: pbft — Byzantine fault tolerance (n ≥ 4, f = ⌊(n−1)/3⌋ liars); KV and STONITH on committed f + 1 votes; no locks, jobs or hooks yet (docs/engines.md). */
    pbft: pbft().prefault({}),
    mqtt: mqtt().optional(),
    serial: z.array(serial(), { error: 'expected a list of serial links' }).max(8, { error: 'expected at most 8 serial links' }).optional(),
    /** Direct TCP between nodes on one LAN (no broker; `tcp` above). */
    tcp: tcp().optional(),
    http: http().prefault({}),
    kv: kv().prefault({}),
    hooks: hooks().prefault({}),
    log: log().prefault({}),
    /**
     * Split-brain defenses: activation gate, leases, STONITH fence devices, watchdog,
     * two-node mode (daemon/config/fencing.ts documents every key). Default: absent,
     * a leader acts as soon as its term's first entry commits (no gate, no STONITH).
     */
    fencing: fencingSchema().optional(),
    /** Service discovery: node liveness TTL, script checks, DNS and mDNS (daemon/config/services.ts). */
    services: servicesSchema().prefault({}),
    /** engine: etcd — endpoints, prefix, lease TTL, credentials (daemon/config/external.ts). */
    etcd: etcdSchema().optional(),
    /** engine: zookeeper — servers, chroot, session timeout, the ensemble's lag (daemon/config/external.ts). */
    zookeeper: zookeeperSchema().optional(),
    /**
     * Leader-only scheduled jobs (daemon/config/jobs.ts documents every key; docs/jobs.md):
     * run by the active leader only, each time slot at most once in the cluster, also
     * across failovers. The same list on every node. Default: none. Needs engine: raft.
     */
    jobs: jobsSchema().default([]),
  })
  .superRefine(
    (c, ctx) => {
      // Runs on every config, also one whose fields are malformed (zod `when` below), so
      // that `quorumd config validate` reports every problem of a file in one pass: each
      // check is guarded (a malformed field it reads makes it skip, not throw), and the
      // loader drops a check's issue that only repeats a field already reported.
      const guard = (f: () => void): void => {
        try {
          f();
        } catch {
          /* a field this check reads is malformed: reported by its own issue */
        }
      };
      const guarded = <T,>(f: () => T, fallback: T): T => {
        try {
          return f();
        } catch {
          return fallback;
        }
      };
      guard(() => {
        if ((c.cluster.key === undefined) === (c.cluster.keyFile === undefined)) {
          ctx.addIssue({ code: 'custom', path: ['cluster', 'key'], message: 'expected exactly one of cluster.key or cluster.keyFile' });
        }
      });
      const ids = new Set<number>();
      const names = new Set<string>();
      guard(() => {
        c.members.forEach((m, i) => {
          if (ids.has(m.id)) ctx.addIssue({ code: 'custom', path: ['members', i, 'id'], message: `expected a unique id; ${m.id} appears twice` });
          if (names.has(m.name)) ctx.addIssue({ code: 'custom', path: ['members', i, 'name'], message: `expected a unique name; "${m.name}" appears twice` });
          ids.add(m.id);
          names.add(m.name);
        });
      });
      const self = guarded(() => c.members.find((m) => m.name === c.node.name), undefined);
      guard(() => {
        if (!self) {
          ctx.addIssue({ code: 'custom', path: ['node', 'name'], message: `expected the name of a member (${c.members.map((m) => m.name).join(', ')}), got "${c.node.name}"` });
        }
      });
      guard(() => {
        if (!c.members.some((m) => m.role === 'voter')) {
          ctx.addIssue({ code: 'custom', path: ['members'], message: 'expected at least one voter' });
        }
      });
      guard(() => {
        c.members.forEach((m, i) => {
          if (m.priority !== undefined && c.engine !== 'bully') {
            ctx.addIssue({ code: 'custom', path: ['members', i, 'priority'], message: 'expected no priority: priorities are used by engine: bully only (this config runs engine: raft)' });
          }
        });
      });
      guard(() => {
        if (c.engine === 'bully') {
          const b = c.bully;
          if (b.failureTimeoutMaxMs <= b.failureTimeoutMinMs) ctx.addIssue({ code: 'custom', path: ['bully', 'failureTimeoutMaxMs'], message: `expected more than failureTimeoutMinMs (${b.failureTimeoutMinMs})` });
          if (b.heartbeatMs * 2 > b.failureTimeoutMinMs) ctx.addIssue({ code: 'custom', path: ['bully', 'heartbeatMs'], message: `expected at most half of failureTimeoutMinMs (${b.failureTimeoutMinMs}) so that one lost announcement does not start an election` });
          if (b.coordinatorWaitMs <= b.answerTimeoutMs) ctx.addIssue({ code: 'custom', path: ['bully', 'coordinatorWaitMs'], message: `expected more than answerTimeoutMs (${b.answerTimeoutMs})` });
          const seen = new Map<number, string>();
          c.members.forEach((m, i) => {
            const p = bullyPriority(m, i);
            if (p === 0) return;
            const other = seen.get(p);
            if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['members', i, 'priority'], message: `expected a priority distinct from ${other}'s (${p}): the bully order must be total` });
            seen.set(p, m.name);
          });
        }
      });
      guard(() => {
        if (c.fencing) for (const i of checkFencing(c.fencing, c.members, c.node.name)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      });
      guard(() => {
        // Keys without meaning for bully are errors here, so `quorumd config validate` reports them too.
      });
      guard(() => {
        if (c.engine === 'bully' && c.jobs.length > 0) {
          ctx.addIssue({ code: 'custom', path: ['jobs'], message: 'expected no jobs with engine: bully: a job slot is granted through the replicated log, which only engine: raft, paxos or zab has' });
        }
      });
      guard(() => {
        if (c.fencing && c.engine === 'bully') for (const i of checkBullyFencing(c.fencing)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      });
      guard(() => {
        // Observers are ZooKeeper's: the zab engine has them (its learners); raft, paxos and bully are not wired for them.
        if (c.engine === 'zab') return;
        c.members.forEach((m, i) => {
          if (m.role === 'observer') ctx.addIssue({ code: 'custom', path: ['members', i, 'role'], message: `expected "voter" or "witness" with engine: ${c.engine}: observers (non-voting members that apply every write) need engine: zab` });
        });
      });
      guard(() => {
        // The engine runtime (daemon/runtime/engine-node.ts): KV, locks, jobs, fencing, witnesses; zab also observers.
        if (c.engine !== 'paxos' && c.engine !== 'zab') return;
        if (c.engine === 'paxos') {
          const p = c.paxos;
          if (p.electionTimeoutMaxMs <= p.electionTimeoutMinMs) ctx.addIssue({ code: 'custom', path: ['paxos', 'electionTimeoutMaxMs'], message: `expected more than electionTimeoutMinMs (${p.electionTimeoutMinMs}) by at least one tick` });
          if (p.heartbeatMs * 2 > p.electionTimeoutMinMs) ctx.addIssue({ code: 'custom', path: ['paxos', 'heartbeatMs'], message: `expected at most half of electionTimeoutMinMs (${p.electionTimeoutMinMs}) so that one lost heartbeat does not start an election` });
        } else {
          const z2 = c.zab;
          if (z2.heartbeatMs * 2 > z2.syncLimitMs) ctx.addIssue({ code: 'custom', path: ['zab', 'heartbeatMs'], message: `expected at most half of syncLimitMs (${z2.syncLimitMs}) so that one lost ping does not end the leadership` });
          // The engine refuses this at boot (src/zab/options.ts, in ticks): said here, with the key, instead of a node that exits 70.
          if (Math.ceil(z2.initLimitMs / z2.tickMs) < Math.ceil(z2.syncLimitMs / z2.tickMs)) ctx.addIssue({ code: 'custom', path: ['zab', 'initLimitMs'], message: `expected at least syncLimitMs (${z2.syncLimitMs}): discovery and synchronization take several round trips, each of which a follower may wait syncLimitMs for; raise initLimitMs with syncLimitMs` });
        }
      });
      guard(() => {
        // PBFT: what the engine runtime serves under it so far (pbft-host.ts); the rest is refused here, never half-served.
        if (c.engine !== 'pbft') {
          for (const k of ['privateKey', 'publicKeys'] as const) {
            if (c.pbft[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['pbft', k], message: `has meaning only for engine pbft; this config runs engine ${c.engine}` });
          }
          return;
        }
        const voters = c.members.filter((m) => m.role !== 'witness').length;
        if (voters < 4) ctx.addIssue({ code: 'custom', path: ['members'], message: `expected at least 4 members with engine: pbft (n = 3f + 1 tolerates f liars), got ${voters}` });
        c.members.forEach((m, i) => {
          if (m.role === 'witness') ctx.addIssue({ code: 'custom', path: ['members', i, 'role'], message: 'not implemented for engine pbft: witness members' });
        });
        // STONITH on committed f + 1 votes (daemon/runtime/pbft-fencing.ts): relays yes, leader-only keys no.
        if (c.fencing) for (const i of checkPbftFencing(c.fencing)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
        if (c.jobs.length > 0) ctx.addIssue({ code: 'custom', path: ['jobs'], message: 'not implemented for engine pbft yet: job slots are claimed by a trusted leader' });
        if (c.hooks.onActive !== undefined || c.hooks.onInactive !== undefined) ctx.addIssue({ code: 'custom', path: ['hooks'], message: 'has no meaning for engine pbft: onActive/onInactive run when this board becomes or stops being the one active leader, and under pbft no board is one (the primary is not trusted; every replica executes the same committed requests). Act on the world through committed requests instead (STONITH on f + 1 votes: fencing); docs/engines.md "Actuation"' });
        const p = c.pbft;
        if ((p.privateKey === undefined) !== (p.publicKeys === undefined)) {
          const has = p.privateKey !== undefined ? 'privateKey' : 'publicKeys';
          const lacks = has === 'privateKey' ? 'publicKeys' : 'privateKey';
          ctx.addIssue({ code: 'custom', path: ['pbft', has], message: `expected pbft.${lacks} too: per-board keys need both this board's private key and every member's public key (or neither: keys derived from the cluster key)` });
        }
        if (p.publicKeys !== undefined) {
          const names = new Set(c.members.map((m) => m.name));
          for (const n of Object.keys(p.publicKeys)) {
            if (!names.has(n)) ctx.addIssue({ code: 'custom', path: ['pbft', 'publicKeys', n], message: `expected a member name (${[...names].join(', ')}), got "${n}"` });
          }
          const missing = c.members.filter((m) => !Object.hasOwn(p.publicKeys!, m.name)).map((m) => m.name);
          if (missing.length > 0) ctx.addIssue({ code: 'custom', path: ['pbft', 'publicKeys'], message: `expected a public key file for every member; missing: ${missing.join(', ')}` });
        }
        if (p.retransmitMs * 2 > p.viewChangeTimeoutMs) ctx.addIssue({ code: 'custom', path: ['pbft', 'retransmitMs'], message: `expected at most half of viewChangeTimeoutMs (${p.viewChangeTimeoutMs}): one lost message must be retransmitted before the primary is suspected` });
        if (p.maxViewChangeTimeoutMs < p.viewChangeTimeoutMs) ctx.addIssue({ code: 'custom', path: ['pbft', 'maxViewChangeTimeoutMs'], message: `expected at least viewChangeTimeoutMs (${p.viewChangeTimeoutMs})` });
      });
      guard(() => {
        if (c.raft.electionTimeoutMaxMs <= c.raft.electionTimeoutMinMs) {
          ctx.addIssue({ code: 'custom', path: ['raft', 'electionTimeoutMaxMs'], message: `expected more than electionTimeoutMinMs (${c.raft.electionTimeoutMinMs})` });
        }
      });
      guard(() => {
        if (c.raft.heartbeatMs * 2 > c.raft.electionTimeoutMinMs) {
          ctx.addIssue({ code: 'custom', path: ['raft', 'heartbeatMs'], message: `expected at most half of electionTimeoutMinMs (${c.raft.electionTimeoutMinMs}) so that one lost heartbeat does not start an election` });
        }
      });
      guard(() => {
        if (c.engine === 'raft' && c.fencing && c.raft.campaignOnPeerGone && c.mqtt && c.mqtt.keepaliveSec * 1500 <= c.raft.electionTimeoutMinMs) {
          // A will after a keepalive timeout follows 1.5 × keepalive of silence from the
          // leader; its read lease (≤ electionTimeoutMinMs after its last acknowledged
          // round) must have run out by then, or followers could elect another leader
          // while it still answers reads alone.
          ctx.addIssue({
            code: 'custom',
            path: ['mqtt', 'keepaliveSec'],
            message: `expected 1.5 × keepaliveSec (${c.mqtt.keepaliveSec * 1500} ms) above raft.electionTimeoutMinMs (${c.raft.electionTimeoutMinMs} ms): with fencing (lease reads) and raft.campaignOnPeerGone a will sent after a keepalive timeout must come after the silent leader's lease ended; raise keepaliveSec or set raft.campaignOnPeerGone: false`,
          });
        }
      });
      const external = c.engine === 'etcd' || c.engine === 'zookeeper';
      guard(() => {
        for (const i of checkExternal(c)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      });
      guard(() => {
        if (external) {
          if (c.mqtt !== undefined) ctx.addIssue({ code: 'custom', path: ['mqtt'], message: `expected no mqtt: section with engine: ${c.engine} (the nodes talk only to ${c.engine})` });
          if (c.serial !== undefined) ctx.addIssue({ code: 'custom', path: ['serial'], message: `expected no serial: links with engine: ${c.engine} (the nodes talk only to ${c.engine})` });
          if (c.tcp !== undefined) ctx.addIssue({ code: 'custom', path: ['tcp'], message: `expected no tcp: link with engine: ${c.engine} (the nodes talk only to ${c.engine})` });
          if (c.fencing !== undefined) for (const i of checkExternalFencing(c.fencing, c.engine)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
          c.members.forEach((m, i) => {
            if (m.role === 'witness') ctx.addIssue({ code: 'custom', path: ['members', i, 'role'], message: `expected no witness with engine: ${c.engine} (${c.engine} is the quorum)` });
          });
        } else if (c.mqtt === undefined && c.tcp === undefined && (c.serial === undefined || c.serial.length === 0)) {
          ctx.addIssue({ code: 'custom', path: [], message: 'expected at least one link: an `mqtt:` section, a `tcp:` section or a `serial:` list' });
        }
      });
      guard(() => {
        if (c.mqtt?.frames === 'fallback' && c.tcp === undefined) {
          ctx.addIssue({ code: 'custom', path: ['mqtt', 'frames'], message: 'expected a tcp: section beside mqtt.frames: fallback (the brokers then carry only the frames the tcp: link cannot); without tcp: leave frames out or set it to always' });
        }
      });
      guard(() => {
        if (c.tcp === undefined) return;
        const seen = new Set<number>();
        c.tcp.peers.forEach((p, i) => {
          if (!ids.has(p.id)) ctx.addIssue({ code: 'custom', path: ['tcp', 'peers', i, 'id'], message: `expected the id of a member, got ${p.id}` });
          if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: ['tcp', 'peers', i, 'id'], message: `expected unique ids; ${p.id} appears twice` });
          seen.add(p.id);
        });
        if (self && !seen.has(self.id)) ctx.addIssue({ code: 'custom', path: ['tcp', 'peers'], message: `expected this node's own address (id ${self.id}) among the peers: where it listens` });
      });
      guard(() => {
        if (c.tcp === undefined) return;
        const others = c.tcp.peers.length - 1;
        if (c.tcp.maxPending < others) {
          ctx.addIssue({ code: 'custom', path: ['tcp', 'maxPending'], message: `expected at least ${others}, the other nodes in tcp.peers (they all dial at once after a power cut, and with fewer slots one's handshake is closed for another's), got ${c.tcp.maxPending}` });
        }
      });
      const paths = new Set<string>();
      guard(() => {
        c.serial?.forEach((s, i) => {
          if ((s.peer === undefined) === (s.bus === undefined)) {
            ctx.addIssue({ code: 'custom', path: ['serial', i], message: 'expected exactly one of `peer: <node id>` (point-to-point wire) or `bus: { members: [...] }` (RS-485 bus)' });
          }
          if (paths.has(s.path)) ctx.addIssue({ code: 'custom', path: ['serial', i, 'path'], message: `expected a device not used by another serial link; ${s.path} appears twice` });
          paths.add(s.path);
          if (s.peer !== undefined) {
            if (!ids.has(s.peer)) ctx.addIssue({ code: 'custom', path: ['serial', i, 'peer'], message: `expected the id of a member, got ${s.peer}` });
            if (self && s.peer === self.id) ctx.addIssue({ code: 'custom', path: ['serial', i, 'peer'], message: 'expected another node than this one' });
          }
          if (s.bus) {
            const seen = new Set<number>();
            s.bus.members.forEach((m, j) => {
              if (!ids.has(m)) ctx.addIssue({ code: 'custom', path: ['serial', i, 'bus', 'members', j], message: `expected the id of a member, got ${m}` });
              if (seen.has(m)) ctx.addIssue({ code: 'custom', path: ['serial', i, 'bus', 'members', j], message: `expected unique ids; ${m} appears twice` });
              seen.add(m);
            });
            if (self && !seen.has(self.id)) ctx.addIssue({ code: 'custom', path: ['serial', i, 'bus', 'members'], message: `expected this node's id (${self.id}) among the bus members` });
          }
        });
      });
      guard(() => {
        if (c.mqtt && c.mqtt.password !== undefined && c.mqtt.passwordFile !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['mqtt', 'passwordFile'], message: 'expected at most one of mqtt.password or mqtt.passwordFile' });
        }
      });
      guard(() => {
        if (c.http.token !== undefined && c.http.tokenFile !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['http', 'tokenFile'], message: 'expected at most one of http.token or http.tokenFile' });
        }
      });
      guard(() => {
        if (c.cluster.previousKey !== undefined && c.cluster.previousKeyFile !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['cluster', 'previousKeyFile'], message: 'expected at most one of cluster.previousKey or cluster.previousKeyFile' });
        }
      });
      const tokenNames = new Set<string>(['token']);
      guard(() => {
        c.http.tokens.forEach((t, i) => {
          if (tokenNames.has(t.name)) ctx.addIssue({ code: 'custom', path: ['http', 'tokens', i, 'name'], message: `expected a unique name; "${t.name}" is taken${t.name === 'token' ? ' (the operator credential of http.token/tokenFile)' : ''}` });
          tokenNames.add(t.name);
        });
      });
      guard(() => {
        const w = c.http.maxWatchesPerAddress;
        if (w !== undefined && w > c.http.maxConnectionsPerAddress) {
          ctx.addIssue({ code: 'custom', path: ['http', 'maxWatchesPerAddress'], message: `expected at most http.maxConnectionsPerAddress (${c.http.maxConnectionsPerAddress}), got ${w}: each watch holds one of the address's connections` });
        }
      });
      const l = guarded(() => parseListen(c.http.listen), undefined);
      guard(() => {
        if (l && !isLoopback(l.host) && c.http.tls === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['http', 'listen'],
            message: `expected a loopback address, or http.tls (certFile, keyFile): bearer tokens to ${l.host} would cross the network in clear`,
          });
        }
      });
    },
    { when: () => true },
  );

export type Config = z.infer<ReturnType<typeof configSchema>>;

