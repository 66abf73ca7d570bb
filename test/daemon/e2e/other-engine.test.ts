/**
 * Members whose configurations differ, on real processes and a real broker:
 *  - one configured with another `engine:` than the others (a typo, or one board left on
 *    the old setting): its peers' messages are authentic, but of another engine's types.
 *    Every node must keep running, drop them, count them and say why — a ZAB node used
 *    to stop ("fatal: internal error in engine zab step PreVote from n1") on the first
 *    Raft message;
 *  - one whose `members:` lists a node the others do not (a board added on one side
 *    only): the others drop its messages and say so — Raft used to step down for its
 *    higher terms and answer its vote requests, without a word.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { call } from '../../../daemon/client/http.ts';
import { engineOfType, MsgType, typeBelongsTo } from '../../../src/wire/messages.ts';
import { freePort, ProcCluster, type ProcNode } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

describe('engineOfType', () => {
  it("names the one engine of each engine's own type, and no engine for the shared ones", () => {
    expect(engineOfType(MsgType.PreVote)).toBe('raft');
    expect(engineOfType(MsgType.AppendReply)).toBe('raft');
    expect(engineOfType(MsgType.SnapshotReply)).toBe('raft');
    expect(engineOfType(MsgType.BullyCoordinator)).toBe('bully');
    expect(engineOfType(MsgType.PaxosAccept)).toBe('paxos');
    expect(engineOfType(MsgType.ZabNotification)).toBe('zab');
    expect(engineOfType(MsgType.ZabSyncReply)).toBe('zab');
    expect(engineOfType(MsgType.PbftRequest)).toBe('pbft');
    expect(engineOfType(MsgType.PbftSuspect)).toBe('pbft');
    // Raft and Paxos share these; client requests are forwarded under every engine.
    const shared = [MsgType.Heartbeat, MsgType.HeartbeatReply, MsgType.TimeoutNow, MsgType.ReadIndex, MsgType.ReadIndexReply, MsgType.ClientRequest, MsgType.ClientReply];
    for (const t of shared) expect(engineOfType(t), MsgType[t]).toBeUndefined();
    // Every other type belongs to an engine (a new type must be placed).
    for (const t of Object.values(MsgType).filter((v): v is number => typeof v === 'number')) {
      if (!shared.includes(t)) expect(engineOfType(t), MsgType[t]).toBeDefined();
    }
    // The shared leader types belong to Raft and Paxos only; client requests to every engine.
    expect(typeBelongsTo(MsgType.Heartbeat, 'raft')).toBe(true);
    expect(typeBelongsTo(MsgType.Heartbeat, 'paxos')).toBe(true);
    expect(typeBelongsTo(MsgType.Heartbeat, 'zab')).toBe(false);
    expect(typeBelongsTo(MsgType.ReadIndex, 'pbft')).toBe(false);
    expect(typeBelongsTo(MsgType.ClientRequest, 'bully')).toBe(true);
    expect(typeBelongsTo(MsgType.PaxosAccept, 'raft')).toBe(false);
    expect(typeBelongsTo(MsgType.ZabPing, 'zab')).toBe(true);
  });
});

describe('a member with another engine', () => {
  it('two Raft nodes elect; the ZAB node keeps running, drops their messages, counts them and says why', async () => {
    cluster = await ProcCluster.start(3, '', (k) => (k === 3 ? 'engine: zab\n' : ''));
    const n3 = cluster.nodes[2]!;
    let metric = 0;
    await cluster.waitFor(
      async () => {
        if (!n3.child) throw new Error(`n3 exited; the end of its log:\n${cluster!.logTail('n3')}`);
        try {
          const r = await call(n3.url, 'GET', '/metrics', { timeoutMs: 2000 });
          const m = /quorumd_dropped_frames_total\{reason="other-engine"\} (\d+)/.exec(r.body.toString());
          metric = m ? Number(m[1]) : 0;
        } catch {
          return false;
        }
        return metric > 0 && /sends raft (or paxos )?messages, but this node runs zab/.test(readFileSync(n3.log, 'utf8'));
      },
      60_000,
      "n3's other-engine count and its warning",
    );
    expect(metric).toBeGreaterThan(0);
    const st = JSON.parse((await call(n3.url, 'GET', '/v1/status', { timeoutMs: 2000 })).body.toString()) as { engine: string };
    expect(st.engine).toBe('zab');
    const warn = readFileSync(n3.log, 'utf8').split('\n').filter((l) => /sends raft (or paxos )?messages/.test(l));
    expect(JSON.parse(warn[0]!)).toMatchObject({ level: 40, peerEngine: expect.stringMatching(/^raft( or paxos)?$/) });
    expect(warn[0]).toMatch(/every member needs the same `engine:`/);
    // The two Raft nodes elect between themselves (a majority of three), and say the same of n3's ZAB messages.
    const n1 = cluster.nodes[0]!;
    await cluster.waitFor(
      async () => {
        try {
          const r = JSON.parse((await call(n1.url, 'GET', '/v1/leader', { timeoutMs: 2000 })).body.toString()) as { leader: string | null };
          return (r.leader === 'n1' || r.leader === 'n2') && /sends zab messages, but this node runs raft/.test(readFileSync(n1.log, 'utf8') + readFileSync(cluster!.nodes[1]!.log, 'utf8'));
        } catch {
          return false;
        }
      },
      60_000,
      'a Raft leader among n1, n2 and their warning about n3',
    );
    for (const n of cluster.nodes) expect(n.child, `${n.name} still running`).toBeDefined();
  }, 180_000);
});

describe('a node whose members list differs', () => {
  it('the others drop its messages, count them and say that every members list must be the same', async () => {
    await cluster?.stop();
    cluster = await ProcCluster.start(3);
    const leader = await cluster.waitLeader(60_000);
    // n4: n1's configuration with itself added to the members, its own name, port and data.
    const port = await freePort();
    const text = readFileSync(cluster.nodes[0]!.config, 'utf8');
    const four = text
      .replace(/^(members:\n(?:  - .*\n)+)/m, (m) => `${m}  - { id: 4, name: n4 }\n`)
      .replace(/^  name: n1$/m, '  name: n4')
      .replace(/^(  dataDir: .*)n1"$/m, '$1n4"')
      .replace(/listen: 127\.0\.0\.1:\d+/, `listen: 127.0.0.1:${port}`);
    expect(four).toMatch(/id: 4, name: n4/);
    expect(four).toMatch(/name: n4\n/);
    const n4: ProcNode = { name: 'n4', url: `http://127.0.0.1:${port}`, config: cluster.nodes[0]!.config.replace(/n1\.yaml$/, 'n4.yaml'), log: cluster.nodes[0]!.log.replace(/n1\.log$/, 'n4.log'), child: undefined };
    writeFileSync(n4.config, four, { mode: 0o600 });
    cluster.nodes.push(n4);
    cluster.spawn(n4);
    let metric = 0;
    await cluster.waitFor(
      async () => {
        try {
          const r = await call(leader.url, 'GET', '/metrics', { timeoutMs: 2000 });
          const m = /quorumd_dropped_frames_total\{reason="not-member"\} (\d+)/.exec(r.body.toString());
          metric = m ? Number(m[1]) : 0;
        } catch {
          return false;
        }
        return metric > 0 && /n4 is not among this node's members/.test(readFileSync(leader.log, 'utf8'));
      },
      60_000,
      "the leader's not-member count and its warning about n4",
    );
    const warn = readFileSync(leader.log, 'utf8').split('\n').find((l) => l.includes('n4 is not among'))!;
    expect(JSON.parse(warn)).toMatchObject({ level: 40, peer: 4 });
    expect(warn).toMatch(/\(n1, n2, n3\).*every node's `members:` must be the same list/);
    // The three keep their leader and term; n4's campaigns move nobody.
    const st = JSON.parse((await call(leader.url, 'GET', '/v1/status', { timeoutMs: 2000 })).body.toString()) as { role: string; term: number };
    expect(st.role).toBe('leader');
    for (const n of cluster.nodes) expect(n.child, `${n.name} still running`).toBeDefined();
  }, 180_000);
});
