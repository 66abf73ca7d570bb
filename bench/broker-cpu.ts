/**
 * CPU of the MQTT hop per write (issue 14), without the rest of a cluster: a broker in
 * a process of its own, and three MqttLinks in this process playing a Raft leader and
 * two followers — per "write" the leader publishes an Append-sized frame to each
 * follower's inbox and each follower answers with an ack-sized frame, so the broker
 * carries 4 publishes per write, as on `quorumd dev --link mqtt`. Frames carry a real
 * header (`from` = the sender), so the embedded broker's `from` check passes.
 *
 * Brokers compared, interleaved in every round:
 *   ours        `quorumd broker --cluster-key-file` of this checkout (its built dist/: run
 *               `npm run build` first), the broker `quorumd dev` runs in its supervisor:
 *               node accounts derived from the cluster key, the `from` check, rate
 *               limit, size guard
 *   base        the same from another built checkout (--compare <dir>)
 *   bare        aedes 1.x with no hooks at all (what our wrapper adds is ours − bare)
 *   mosquitto   Debian's mosquitto (anonymous, loopback), when installed
 *
 * Per broker and mode: the broker process's CPU (utime + stime from /proc, and the
 * stime part) per write, its wake-ups per write (voluntary context switches: each
 * time its event loop slept and a packet woke it), its garbage collections (--trace-gc), the CPU of this process (the three
 * links: mqtt.js publish and receive) per write, and the round trip p50/p99.
 * Modes: `seq` (one write at a time) and `inflight=N` (N writes in flight, each its own
 * 4 publishes: what a busy leader's pipelining looks like to the broker).
 *
 *   npx tsx bench/broker-cpu.ts [--writes 5000] [--rounds 3] [--inflight 16]
 *        [--only ours,bare,mosquitto] [--compare <another checkout>] [--prof <dir>]
 *        [--broker-flags '--max-semi-space-size=1 --heap-growing-percent=20']
 *
 * --broker-flags: node flags of the broker processes; the default is what bin/quorumd.js
 * runs `quorumd dev` (and so its broker) with. The GC column is the broker's collections
 * per 1000 sequential writes and their ms.
 *
 * --prof <dir>: the node brokers run with --cpu-prof into <dir> (one .cpuprofile each;
 * a profile samples wall time, so on a busy machine a syscall's share includes waiting).
 * Loopback only; every wait is bounded; the brokers are stopped at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLK_TCK } from './_proc.ts';

const CHILD = process.argv[2] === '--child';

if (CHILD) {
  // `--child bare <port>`: aedes with no hooks, on 127.0.0.1:<port>; stops on SIGTERM.
  const { Aedes } = await import('aedes');
  const aedes = await Aedes.createBroker({});
  const server = net.createServer({ noDelay: true }, aedes.handle as (s: net.Socket) => void);
  await new Promise<void>((r) => server.listen(Number(process.argv[4]), '127.0.0.1', r));
  process.on('SIGTERM', () => {
    server.close();
    aedes.close(() => process.exit(0));
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const { MqttLink } = await import('../hal/mqtt/link.ts');
  const { freePort, mosquittoAvailable, MOSQUITTO } = await import('../test/hal/mqtt/helpers.ts');
  const arg = (name: string, def: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
  };
  const WRITES = Number(arg('writes', '5000'));
  const ROUNDS = Number(arg('rounds', '3'));
  const INFLIGHT = Number(arg('inflight', '16'));
  const COMPARE = process.argv.includes('--compare') ? resolve(arg('compare', '')) : undefined;
  // The node flags of `quorumd dev`'s supervisor (bin/quorumd.js's line): the broker runs under them there.
  const BROKER_FLAGS = arg('broker-flags', '--max-semi-space-size=1 --heap-growing-percent=20').split(' ').filter((x) => x !== '');
  const PROF = process.argv.includes('--prof') ? resolve(arg('prof', '')) : undefined;
  if (!Number.isInteger(WRITES) || WRITES < 100 || WRITES > 1_000_000) throw new Error(`--writes: expected an integer 100..1000000, got ${arg('writes', '')}`);
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50) throw new Error(`--rounds: expected an integer 1..50, got ${arg('rounds', '')}`);
  if (!Number.isInteger(INFLIGHT) || INFLIGHT < 1 || INFLIGHT > 1024) throw new Error(`--inflight: expected an integer 1..1024, got ${arg('inflight', '')}`);
  if (COMPARE && !existsSync(join(COMPARE, 'dist'))) throw new Error(`--compare: expected a built quorumd checkout (bin/quorumd.js and dist/), got ${COMPARE}`);
  const kinds = arg('only', `ours,${COMPARE ? 'base,' : ''}bare,mosquitto`).split(',');
  for (const k of kinds) if (!['ours', 'base', 'bare', 'mosquitto'].includes(k)) throw new Error(`--only: expected a list of ours, base, bare, mosquitto; got ${k}`);
  if (kinds.includes('base') && !COMPARE) throw new Error('--only base needs --compare <dir>');
  const haveMosquitto = mosquittoAvailable();
  const root = resolve(import.meta.dirname, '..');
  if (kinds.includes('ours') && !existsSync(join(root, 'dist'))) throw new Error('broker-cpu: the `ours` column runs the built broker: run `npm run build` first');
  const KEY_HEX = '07'.repeat(32);

  interface Broker {
    port: number;
    /** The broker process's CPU so far, µs: all, and the part in the kernel. */
    cpuUs(): Promise<{ cpu: number; sys: number; wakes: number; preempted: number; gcN: number; gcMs: number }>;
    stop(): Promise<void>;
  }

  /** utime + stime of `pid` so far, µs, and the stime part. */
  const procCpu = (pid: number) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ctx = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
    return {
      cpu: ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6,
      sys: (Number(f[12]) / CLK_TCK) * 1e6,
      /** Times the main thread slept and was woken (an epoll_wait that blocked, mostly), and was preempted. */
      wakes: ctx('voluntary_ctxt_switches'),
      preempted: ctx('nonvoluntary_ctxt_switches'),
    };
  };

  /** Starts a broker process and waits (bounded) until it accepts connections on `port`. */
  async function startProc(kind: string, cmd: string, args: string[], port: number, cleanup?: () => void): Promise<Broker> {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
    // --trace-gc lines on stdout: "... ms: Scavenge 3.1 (4.2) -> 2.0 (4.2) MB, 0.35 / 0.00 ms ..."
    const gc = { n: 0, ms: 0 };
    let rest = '';
    proc.stdout!.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const l of lines) {
        const m = / ms: (Scavenge|Mark-Compact|Mark-Compact \(reduce\)|Minor Mark-Sweep)\b.*?MB, ([\d.]+) \//.exec(l);
        if (m) {
          gc.n++;
          gc.ms += Number(m[2]);
        }
      }
    });
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    let up = false;
    for (let i = 0; i < 3000 && !up && proc.exitCode === null; i++) {
      up = await new Promise<boolean>((res) => {
        const s = net.createConnection({ host: '127.0.0.1', port });
        s.once('connect', () => (s.destroy(), res(true)));
        s.once('error', () => res(false));
      });
      if (!up) await new Promise((r) => setTimeout(r, 10));
    }
    if (!up) {
      proc.kill('SIGKILL');
      cleanup?.();
      throw new Error(`${kind}: the broker did not listen on 127.0.0.1:${port} within 30 s`);
    }
    const pid = proc.pid!;
    return {
      port,
      async cpuUs() {
        return { ...procCpu(pid), gcN: gc.n, gcMs: gc.ms };
      },
      stop: async () => {
        // SIGTERM: a node broker exits in order (and writes its --cpu-prof); SIGKILL after 10 s.
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
        cleanup?.();
      },
    };
  }

  async function startBrokerOf(kind: string): Promise<Broker> {
    const port = await freePort();
    const nodeFlags = [...BROKER_FLAGS, '--trace-gc', ...(PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF] : [])];
    if (kind === 'bare') return startProc(kind, process.execPath, ['--import', 'tsx', ...nodeFlags, import.meta.filename, '--child', 'bare', String(port)], port);
    if (kind === 'ours' || kind === 'base') {
      // `quorumd broker` of that checkout (its built dist/, as `quorumd dev` runs its broker).
      const dir = mkdtempSync(join(tmpdir(), 'broker-cpu-'));
      const keyFile = join(dir, 'cluster.key');
      writeFileSync(keyFile, `${KEY_HEX}\n`, { mode: 0o600 });
      const bin = join(kind === 'base' ? COMPARE! : root, 'bin', 'quorumd.js');
      return startProc(kind, process.execPath, [...nodeFlags, bin, 'broker', '--port', String(port), '--cluster-key-file', keyFile], port, () => rmSync(dir, { recursive: true, force: true }));
    }
    // mosquitto: set_tcp_nodelay, or every hop waits ~40 ms for a delayed ACK (its default leaves Nagle on).
    const dir = mkdtempSync(join(tmpdir(), 'broker-cpu-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest none', 'set_tcp_nodelay true', ''].join('\n'));
    return startProc(kind, MOSQUITTO, ['-c', conf], port, () => rmSync(dir, { recursive: true, force: true }));
  }

  /** A frame of `size` bytes whose CBOR header names `from` (what the broker peeks at). */
  const frame = (from: number, size: number, type: number) => {
    const f = new Uint8Array(size).fill(0x41);
    f.set([0x89, 0x01, type, 0x01, from]);
    return f;
  };
  // Sizes of a 16-byte PUT's Append and of its ack on the wire (docs/wire.md: header + tag).
  const APPEND = [0, 0, frame(1, 150, 3), frame(1, 150, 3)];
  const ACK = [0, frame(2, 60, 4), frame(3, 60, 4)];

  async function measure(kind: string): Promise<{ broker: number; brokerSys: number; wakes: number; gcPer1000: number; gcMsPer1000: number; links: number; linksSys: number; p50: number; p99: number; inflightBroker: number; inflightLinks: number; wps: number }> {
    const b = await startBrokerOf(kind);
    const key = Buffer.from(KEY_HEX, 'hex');
    const url = `mqtt://127.0.0.1:${b.port}`;
    const links = [1, 2, 3].map((self) => new MqttLink({ cluster: 1, self, brokers: [url], keyring: { current: key } }));
    try {
      for (let i = 0; i < 1000 && links.some((l) => l.connectedCount() === 0); i++) await new Promise((r) => setTimeout(r, 10));
      if (links.some((l) => l.connectedCount() === 0)) throw new Error(`${kind}: links did not connect within 10 s`);
      let acks = 0;
      let wake: (() => void) | undefined;
      links[1]!.onFrame(() => links[1]!.send(1, ACK[1] as Uint8Array));
      links[2]!.onFrame(() => links[2]!.send(1, ACK[2] as Uint8Array));
      links[0]!.onFrame(() => {
        acks++;
        wake?.();
      });
      const write = () => {
        links[0]!.send(2, APPEND[2] as Uint8Array);
        links[0]!.send(3, APPEND[3] as Uint8Array);
      };
      const until = (n: number) =>
        new Promise<boolean>((res) => {
          if (acks >= n) return res(true);
          const t = setTimeout(() => {
            wake = undefined;
            res(false);
          }, 5000);
          wake = () => {
            if (acks < n) return;
            clearTimeout(t);
            wake = undefined;
            res(true);
          };
        });
      // Sequential: warm-up, then WRITES measured.
      const seq = async (n: number, lat?: number[]) => {
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          const target = acks + 2;
          write();
          if (!(await until(target))) throw new Error(`${kind}: write ${i} got no acks within 5 s`);
          lat?.push(performance.now() - t0);
        }
      };
      await seq(2000);
      const lat: number[] = [];
      const c0 = await b.cpuUs();
      const l0 = process.cpuUsage();
      await seq(WRITES, lat);
      const l1 = process.cpuUsage(l0);
      const c1 = await b.cpuUs();
      // In flight: INFLIGHT writes at a time, each its next as soon as its 2 acks are in.
      const total = WRITES;
      const ci0 = await b.cpuUs();
      const li0 = process.cpuUsage();
      const t0 = performance.now();
      let started = 0;
      links[0]!.onFrame(() => {
        acks++;
        // every second ack completes a write (the pairs interleave, the count does not care)
        if (acks % 2 === 0 && started < total) {
          started++;
          write();
        }
        wake?.();
      });
      const base = acks;
      for (; started < INFLIGHT; started++) write();
      const target = base + 2 * total;
      for (let i = 0; i < 20 && acks < target; i++) await until(target);
      const ok = acks >= target;
      const wall = performance.now() - t0;
      const li1 = process.cpuUsage(li0);
      const ci1 = await b.cpuUs();
      if (!ok) throw new Error(`${kind}: in-flight writes stalled (${acks - base}/${2 * total} acks)`);
      lat.sort((x, y) => x - y);
      return {
        broker: (c1.cpu - c0.cpu) / 1000 / WRITES,
        brokerSys: (c1.sys - c0.sys) / 1000 / WRITES,
        wakes: (c1.wakes - c0.wakes) / WRITES,
        gcPer1000: ((c1.gcN - c0.gcN) * 1000) / WRITES,
        gcMsPer1000: ((c1.gcMs - c0.gcMs) * 1000) / WRITES,
        linksSys: l1.system / 1000 / WRITES,
        links: (l1.user + l1.system) / 1000 / WRITES,
        p50: lat[Math.floor(lat.length * 0.5)]!,
        p99: lat[Math.floor(lat.length * 0.99)]!,
        inflightBroker: (ci1.cpu - ci0.cpu) / 1000 / total,
        inflightLinks: (li1.user + li1.system) / 1000 / total,
        wps: total / (wall / 1000),
      };
    } finally {
      await Promise.all(links.map((l) => new Promise((r) => l.close(r))));
      await b.stop();
    }
  }

  const rows: Record<string, Array<Awaited<ReturnType<typeof measure>>>> = {};
  const run = kinds.filter((k) => k !== 'mosquitto' || haveMosquitto);
  if (run.length < kinds.length) console.log('mosquitto is not installed (/usr/sbin/mosquitto): its column is skipped');
  console.log(`broker-cpu: ${WRITES} writes (4 publishes each) per mode, ${ROUNDS} round(s), in flight ${INFLIGHT}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of r % 2 === 0 ? run : [...run].reverse()) {
      const m = await measure(k);
      (rows[k] ??= []).push(m);
      console.log(
        `  round ${r + 1} ${k.padEnd(9)} seq: broker ${m.broker.toFixed(3)} ms/write (sys ${m.brokerSys.toFixed(3)}, ${m.wakes.toFixed(2)} wake-ups), GC ${m.gcPer1000.toFixed(1)}/${m.gcMsPer1000.toFixed(1)} ms per 1000, links ${m.links.toFixed(3)} (sys ${m.linksSys.toFixed(3)}), rtt p50 ${m.p50.toFixed(3)} p99 ${m.p99.toFixed(3)} ms | ` +
          `inflight ${INFLIGHT}: broker ${m.inflightBroker.toFixed(3)}, links ${m.inflightLinks.toFixed(3)} ms/write, ${Math.round(m.wps)} writes/s | load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  }
  const range = (xs: number[], d = 3) => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
  console.log(`\n| broker | CPU ms/write seq | of it kernel | links ms/write seq | of it kernel | rtt p50 | rtt p99 | CPU ms/write in flight ${INFLIGHT} | links | writes/s |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const k of run) {
    const x = rows[k]!;
    console.log(
      `| ${k} | ${range(x.map((m) => m.broker))} | ${range(x.map((m) => m.brokerSys))} | ${range(x.map((m) => m.links))} | ${range(x.map((m) => m.linksSys))} | ${range(x.map((m) => m.p50))} | ${range(x.map((m) => m.p99))} | ${range(x.map((m) => m.inflightBroker))} | ${range(x.map((m) => m.inflightLinks))} | ${range(x.map((m) => m.wps), 0)} |`,
    );
  }
}
