/**
 * Three `quorumd start` processes (engine: etcd or zookeeper) whose `fencing:` relays
 * are dev rails served here (daemon/fencing/dev-relay.ts): switching a rail off SIGKILLs
 * that node's process and keeps it down, on starts it again. Every rail switch and
 * read-back is logged with the wall clock, and every node's on-active hook writes
 * "<wall ms> <node> active <token>" to one file, so that a test can order a fence and
 * an activation on one clock. Used by test/engines/stonith.test.ts and
 * bench/external-failover.ts (--stonith).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRailServer, type RailServer } from '../../daemon/fencing/dev-relay.ts';
import { ExternalProcCluster, type ProcNode } from './proc.ts';
import { testToken, testTokenFile } from '../helpers/auth.ts';

export interface RigStatus {
  active: boolean;
  role: string;
  token: number;
  suspects?: Array<{ node: string; clearedBy: string | null }>;
  fences?: { local: Array<{ target: string; outcome: string }> };
  relays?: unknown[];
}

export class RailRig {
  c!: ExternalProcCluster;
  rails!: RailServer;
  readonly on = new Map<string, boolean>();
  /** [wall ms, "rail q1 off" | "read q1" | ...] in the order they happened here. */
  readonly railLog: Array<[number, string]> = [];
  eventsFile = '';

  /** `settleMs`: the fencer's wait between switching a rail off and reading it back. */
  constructor(readonly settleMs: number) {}

  async start(engine: 'etcd' | 'zookeeper', endpoints: string[], sectionYaml: string): Promise<void> {
    const names = ['q1', 'q2', 'q3'];
    for (const n of names) this.on.set(n, true);
    this.rails = await startRailServer({
      token: testToken(),
      get: (node) => {
        if (!this.on.has(node)) return undefined;
        this.railLog.push([Date.now(), `read ${node} ${this.on.get(node) ? 'on' : 'off'}`]);
        return this.on.get(node);
      },
      set: (node, on) => {
        if (!this.on.has(node)) return undefined;
        this.railLog.push([Date.now(), `rail ${node} ${on ? 'on' : 'off'}`]);
        const was = this.on.get(node);
        this.on.set(node, on);
        const p = this.c.nodes.find((x) => x.name === node)!;
        if (!on) p.child?.kill('SIGKILL');
        else if (!was) this.c.spawn(p);
        return on;
      },
    });
    const url = this.rails.url;
    const tokenFile = testTokenFile();
    this.c = await ExternalProcCluster.start({
      engine,
      endpoints,
      sectionYaml,
      extraYaml: (dir, self) => {
        this.eventsFile = join(dir, 'events.log');
        // Every node fences the two others (a node never fences itself).
        const targets = names
          .filter((n) => n !== self)
          .map((n) => `    - { node: ${n}, levels: [ [ { type: dev-relay, url: "${url}", tokenFile: ${JSON.stringify(tokenFile)} } ] ], powerOnAfterMs: 1000 }`)
          .join('\n');
        return [
          `hooks:\n  onActive: 'echo "$(date +%s%3N) $QUORUMD_NODE active $QUORUMD_TOKEN" >> ${this.eventsFile}'`,
          `fencing:\n  settleMs: ${this.settleMs}\n  retries: 0\n  opTimeoutMs: 2000\n  targets:\n${targets}`,
        ].join('\n');
      },
    });
  }

  async status(n: ProcNode): Promise<RigStatus | undefined> {
    try {
      const r = await fetch(`${this.c.url(n)}/v1/status`, { headers: this.c.auth(), signal: AbortSignal.timeout(1000) });
      return r.ok ? ((await r.json()) as RigStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Hook lines: [wall ms, node, token]. */
  actives(): Array<[number, string, number]> {
    if (!existsSync(this.eventsFile)) return [];
    return readFileSync(this.eventsFile, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
      .map((p) => [Number(p[0]), p[1]!, Number(p[3])] as [number, string, number]);
  }

  async close(): Promise<void> {
    await this.c?.close();
    this.c?.remove();
    await this.rails?.close();
  }
}

