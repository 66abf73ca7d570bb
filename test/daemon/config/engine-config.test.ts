/**
 * engine: paxos and engine: zab in the config: accepted with their sections' defaults,
 * with a fencing: section, jobs and witness members (the engine runtime has them, as
 * raft); observers (ZooKeeper's non-voting members) with engine: zab only.
 */
import { describe, expect, it } from 'vitest';
import { good, problems } from './helpers.ts';
import { parseConfigText } from '../../../daemon/config/load.ts';

describe('config: engine paxos and zab', () => {
  it('engine: paxos and engine: zab are accepted, with their documented defaults', () => {
    const p = parseConfigText(good + 'engine: paxos\n');
    expect(p.engine).toBe('paxos');
    // The board defaults (docs/config.md, "Timing on a board"), as Raft's.
    expect(p.paxos).toEqual({ tickMs: 10, electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, heartbeatMs: 100, prePrepare: true, checkQuorum: true, campaignOnPeerGone: true });
    const z = parseConfigText(good + 'engine: zab\nzab:\n  syncLimitMs: 300\n');
    expect(z.engine).toBe('zab');
    expect(z.zab).toMatchObject({ heartbeatMs: 100, syncLimitMs: 300, initLimitMs: 2000 });
    expect(parseConfigText(good + 'engine: zab\n').zab).toMatchObject({ heartbeatMs: 100, syncLimitMs: 1000, initLimitMs: 2000 });
  });

  for (const engine of ['paxos', 'zab']) {
    it(`engine: ${engine} takes a fencing: section, jobs and witness members`, () => {
      const f = parseConfigText(good + `engine: ${engine}\nfencing:\n  watchdogTimeoutMs: 15000\n`);
      expect(f.fencing?.watchdogTimeoutMs).toBe(15000);
      const j = parseConfigText(good + `engine: ${engine}\njobs:\n  - { name: j, cron: "*/5 * * * *", command: "true" }\n`);
      expect(j.jobs.map((x) => x.name)).toEqual(['j']);
      const w = parseConfigText(good.replace('{ id: 3, name: c }', '{ id: 3, name: c, role: witness }') + `engine: ${engine}\n`);
      expect(w.members.map((m) => m.role)).toEqual(['voter', 'voter', 'witness']);
    });
  }

  it('observers: engine zab only; never a fencing target; the role is named in the error', () => {
    const withObserver = good.replace('{ id: 3, name: c }', '{ id: 3, name: c }\n  - { id: 4, name: d, role: observer }');
    const z = parseConfigText(withObserver + 'engine: zab\n');
    expect(z.members.map((m) => m.role)).toEqual(['voter', 'voter', 'voter', 'observer']);
    for (const engine of ['raft', 'paxos', 'bully']) {
      const p = problems(withObserver + `engine: ${engine}\n`);
      expect(p.find((x) => x.key === 'members.3.role')?.message, engine).toMatch(new RegExp(`observers .* need engine: zab`));
    }
    const bad = problems(good.replace('{ id: 3, name: c }', '{ id: 3, name: c, role: listener }'));
    expect(bad.find((x) => x.key === 'members.2.role')?.message).toMatch(/expected "voter", "witness" or "observer"/);
    const target = problems(withObserver + 'engine: zab\nfencing:\n  targets:\n    - { node: d, levels: [[{ type: watchdog-wait, waitMs: 20000 }]] }\n');
    expect(target.find((x) => x.key.startsWith('fencing.targets.0'))?.message).toMatch(/d is an observer, which never leads/);
  });

  it('paxos timing is checked like raft\'s', () => {
    const p = problems(good + 'engine: paxos\npaxos:\n  electionTimeoutMinMs: 300\n  electionTimeoutMaxMs: 200\n');
    expect(p.find((x) => x.key === 'paxos.electionTimeoutMaxMs')?.message).toMatch(/more than electionTimeoutMinMs/);
    const q = problems(good + 'engine: paxos\npaxos:\n  heartbeatMs: 600\n');
    expect(q.find((x) => x.key === 'paxos.heartbeatMs')?.message).toMatch(/at most half/);
  });

  it('zab: initLimitMs below syncLimitMs is refused by the config check, naming the key (the engine would refuse it at boot, and the node exit 70)', () => {
    const p = problems(good + 'engine: zab\nzab:\n  syncLimitMs: 10000\n');
    expect(p.find((x) => x.key === 'zab.initLimitMs')?.message).toMatch(/expected at least syncLimitMs \(10000\)/);
    expect(parseConfigText(good + 'engine: zab\nzab:\n  syncLimitMs: 10000\n  initLimitMs: 10000\n').zab).toMatchObject({ syncLimitMs: 10000, initLimitMs: 10000 });
  });
});

describe('config: engine pbft', () => {
  const four = good.replace('{ id: 3, name: c }', '{ id: 3, name: c }\n  - { id: 4, name: d }');
  it('is accepted with 4 members and its documented defaults', () => {
    const p = parseConfigText(four + 'engine: pbft\n');
    expect(p.engine).toBe('pbft');
    expect(p.pbft).toEqual({ tickMs: 10, viewChangeTimeoutMs: 4000, maxViewChangeTimeoutMs: 60000, retransmitMs: 200, statusMs: 1000, checkpointInterval: 32 });
  });
  it('takes a fencing section with relays (STONITH on committed f + 1 votes)', () => {
    const p = parseConfigText(four + 'engine: pbft\nfencing:\n  randomDelayMaxMs: 300\n  targets:\n    - { node: b, levels: [[{ type: dev-relay, url: "http://127.0.0.1:9/" }]] }\n');
    expect(p.fencing?.targets.length).toBe(1);
  });
  it('refuses what the runtime does not do under pbft yet, naming the key', () => {
    expect(problems(good + 'engine: pbft\n').find((x) => x.key === 'members')?.message).toMatch(/at least 4 members with engine: pbft/);
    expect(problems(four + 'engine: pbft\nfencing:\n  watchdogTimeoutMs: 15000\n').find((x) => x.key === 'fencing.watchdogTimeoutMs')?.message).toMatch(/no meaning for engine pbft: a board fences only on a committed decision of f \+ 1 members/);
    expect(problems(four + 'engine: pbft\njobs:\n  - { name: j, cron: "*/5 * * * *", command: "true" }\n').find((x) => x.key === 'jobs')?.message).toMatch(/not implemented for engine pbft yet/);
    expect(problems(four + 'engine: pbft\nhooks:\n  onActive: "true"\n').find((x) => x.key === 'hooks')?.message).toMatch(/no meaning for engine pbft: .*no board is one/);
    expect(problems(four + 'engine: pbft\nfencing:\n  priorityDelayMs: 100\n').find((x) => x.key === 'fencing.priorityDelayMs')?.message).toMatch(/no meaning for engine pbft/);
    expect(problems(four + 'engine: pbft\npbft:\n  retransmitMs: 2500\n').find((x) => x.key === 'pbft.retransmitMs')?.message).toMatch(/at most half of viewChangeTimeoutMs/);
  });
});
