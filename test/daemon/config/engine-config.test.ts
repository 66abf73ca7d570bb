/**
 * engine: paxos and engine: zab in the config: accepted with their sections' defaults,
 * with a fencing: section and jobs (the engine runtime has them, as raft); what it does
 * not have yet (witness members) is refused naming the key and saying "not implemented
 * for engine <name>".
 */
import { describe, expect, it } from 'vitest';
import { good, problems } from './helpers.ts';
import { parseConfigText } from '../../../daemon/config/load.ts';

describe('config: engine paxos and zab', () => {
  it('engine: paxos and engine: zab are accepted, with their documented defaults', () => {
    const p = parseConfigText(good + 'engine: paxos\n');
    expect(p.engine).toBe('paxos');
    expect(p.paxos).toEqual({ tickMs: 10, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatMs: 50, prePrepare: true, checkQuorum: true, campaignOnPeerGone: true });
    const z = parseConfigText(good + 'engine: zab\nzab:\n  syncLimitMs: 300\n');
    expect(z.engine).toBe('zab');
    expect(z.zab).toMatchObject({ heartbeatMs: 50, syncLimitMs: 300, initLimitMs: 1000 });
  });

  for (const engine of ['paxos', 'zab']) {
    it(`engine: ${engine} takes a fencing: section and jobs, and refuses witness members, naming the key`, () => {
      const f = parseConfigText(good + `engine: ${engine}\nfencing:\n  watchdogTimeoutMs: 15000\n`);
      expect(f.fencing?.watchdogTimeoutMs).toBe(15000);
      const j = parseConfigText(good + `engine: ${engine}\njobs:\n  - { name: j, cron: "*/5 * * * *", command: "true" }\n`);
      expect(j.jobs.map((x) => x.name)).toEqual(['j']);
      const witness = problems(good.replace('{ id: 3, name: c }', '{ id: 3, name: c, role: witness }') + `engine: ${engine}\n`);
      expect(witness.find((x) => x.key === 'members.2.role')?.message).toMatch(new RegExp(`not implemented for engine ${engine}: witness members`));
    });
  }

  it('paxos timing is checked like raft\'s', () => {
    const p = problems(good + 'engine: paxos\npaxos:\n  electionTimeoutMinMs: 300\n  electionTimeoutMaxMs: 200\n');
    expect(p.find((x) => x.key === 'paxos.electionTimeoutMaxMs')?.message).toMatch(/more than electionTimeoutMinMs/);
    const q = problems(good + 'engine: paxos\npaxos:\n  heartbeatMs: 100\n');
    expect(q.find((x) => x.key === 'paxos.heartbeatMs')?.message).toMatch(/at most half/);
  });
});

describe('config: engine pbft', () => {
  const four = good.replace('{ id: 3, name: c }', '{ id: 3, name: c }\n  - { id: 4, name: d }');
  it('is accepted with 4 members and its documented defaults', () => {
    const p = parseConfigText(four + 'engine: pbft\n');
    expect(p.engine).toBe('pbft');
    expect(p.pbft).toEqual({ tickMs: 10, viewChangeTimeoutMs: 1000, maxViewChangeTimeoutMs: 60000, retransmitMs: 200, statusMs: 1000, checkpointInterval: 32 });
  });
  it('refuses what the runtime does not do under pbft yet, naming the key', () => {
    expect(problems(good + 'engine: pbft\n').find((x) => x.key === 'members')?.message).toMatch(/at least 4 members with engine: pbft/);
    expect(problems(four + 'engine: pbft\nfencing:\n  watchdogTimeoutMs: 15000\n').find((x) => x.key === 'fencing')?.message).toMatch(/not implemented for engine pbft yet/);
    expect(problems(four + 'engine: pbft\njobs:\n  - { name: j, cron: "*/5 * * * *", command: "true" }\n').find((x) => x.key === 'jobs')?.message).toMatch(/not implemented for engine pbft yet/);
    expect(problems(four + 'engine: pbft\nhooks:\n  onActive: "true"\n').find((x) => x.key === 'hooks')?.message).toMatch(/not implemented for engine pbft yet/);
    expect(problems(four + 'engine: pbft\npbft:\n  retransmitMs: 600\n').find((x) => x.key === 'pbft.retransmitMs')?.message).toMatch(/at most half of viewChangeTimeoutMs/);
  });
});
