/**
 * Config files: the examples validate; every kind of mistake names the key, the line
 * and what was expected; `quorumd config validate` exits 2 on a bad file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY, good, problems, root } from './helpers.ts';
import { ConfigError, loadConfigFile, parseConfigText } from '../../../daemon/config/load.ts';

/** Temp directories of this file's tests, removed at the end. */
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'qcfg-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('config', () => {
  it('a minimal file gets the documented defaults', () => {
    const c = parseConfigText(good);
    expect(c.http.listen).toBe('127.0.0.1:7071');
    expect(c.raft).toMatchObject({ electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, heartbeatMs: 100, preVote: true, campaignOnPeerGone: true });
    expect(c.hooks.timeoutMs).toBe(10000);
    expect(c.engine).toBe('raft');
  });

  it('both examples in examples/ pass the schema', () => {
    for (const f of ['three-pis-mqtt.yaml', 'two-pis-witness-serial.yaml']) {
      const c = parseConfigText(readFileSync(join(root, 'examples', f), 'utf8'), f);
      expect(c.members.length).toBe(3);
    }
  });

  const cases: Array<[string, string, string, number, RegExp]> = [
    ['wrong type', good.replace('id: 2,', 'id: two,'), 'members.1.id', 6, /integer 1\.\.254/],
    ['unknown key', good + 'mqqt: {}\n', 'mqqt', 13, /unknown key "mqqt"/],
    ['nested unknown key', good.replace('  brokers:', '  keepalive: 3\n  brokers:'), 'mqtt.keepalive', 12, /unknown key/],
    ['missing key', good.replace('  dataDir: /tmp/quorumd-a\n', ''), 'node.dataDir', 9, /missing/],
    ['bad enum', good.replace('{ id: 3, name: c }', '{ id: 3, name: c, role: boss }'), 'members.2.role', 7, /"voter", "witness" or "observer"/],
    ['duplicate id', good.replace('id: 3', 'id: 2'), 'members.2.id', 7, /unique id/],
    ['node not a member', good.replace('name: a\n  dataDir', 'name: zz\n  dataDir'), 'node.name', 9, /name of a member/],
    ['bad key', good.replace(KEY, 'abc'), 'cluster.key', 3, /hex digits/],
    ['no link', good.replace(/mqtt:[\s\S]*$/, ''), '(file)', 1, /at least one link/],
    ['open API without token', good + 'http:\n  listen: 0.0.0.0:7071\n', 'http.listen', 14, /token/],
    ['timeouts inverted', good + 'raft:\n  electionTimeoutMinMs: 300\n  electionTimeoutMaxMs: 200\n', 'raft.electionTimeoutMaxMs', 15, /more than electionTimeoutMinMs/],
    ['bad broker URL', good.replace('mqtt://127.0.0.1:1883', 'http://x'), 'mqtt.brokers.0', 12, /mqtt:\/\//],
    ['not YAML', good + 'members: [\n', '(yaml)', 13, /not valid YAML/],
  ];
  for (const [name, text, key, line, re] of cases) {
    it(`names key and line: ${name}`, () => {
      const p = problems(text);
      const hit = p.find((x) => x.key === key);
      expect(hit, JSON.stringify(p)).toBeDefined();
      expect(hit!.line).toBe(line);
      expect(hit!.message).toMatch(re);
    });
  }

  it('http.maxWatchesPerAddress: unset by default (the server takes half the connection bound); at most maxConnectionsPerAddress', () => {
    expect(parseConfigText(good).http.maxWatchesPerAddress).toBeUndefined();
    expect(parseConfigText(good + 'http:\n  maxWatchesPerAddress: 100\n').http.maxWatchesPerAddress).toBe(100);
    expect(parseConfigText(good + 'http:\n  maxConnectionsPerAddress: 16\n  maxWatchesPerAddress: 16\n').http.maxWatchesPerAddress).toBe(16);
    const over = problems(good + 'http:\n  maxConnectionsPerAddress: 16\n  maxWatchesPerAddress: 17\n').find((x) => x.key === 'http.maxWatchesPerAddress');
    expect(over?.message).toMatch(/expected at most http\.maxConnectionsPerAddress \(16\), got 17: each watch holds one of the address's connections/);
    expect(over?.line).toBe(15);
    const zero = problems(good + 'http:\n  maxWatchesPerAddress: 0\n').find((x) => x.key === 'http.maxWatchesPerAddress');
    expect(zero?.message).toMatch(/expected watches: an integer 1\.\.65536/);
    // Beyond the default connection bound (128) without raising it: refused too.
    expect(problems(good + 'http:\n  maxWatchesPerAddress: 129\n').some((x) => x.key === 'http.maxWatchesPerAddress' && /\(128\)/.test(x.message))).toBe(true);
  });

  it('a file that is not a mapping, and a missing file, are errors not crashes', () => {
    expect(problems('- 1\n- 2\n')[0]!.message).toMatch(/expected a YAML mapping/);
    expect(() => loadConfigFile('/nonexistent/q.yaml')).toThrow(/cannot read the file/);
  });

  it('keyFile and tokenFile are read relative to the config; a missing one names its line', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'k'), KEY + '\n');
    writeFileSync(join(dir, 'q.yaml'), good.replace(`key: ${KEY}`, 'keyFile: k'));
    expect(loadConfigFile(join(dir, 'q.yaml')).key.length).toBe(32);
    writeFileSync(join(dir, 'q2.yaml'), good.replace(`key: ${KEY}`, 'keyFile: nothere'));
    expect(() => loadConfigFile(join(dir, 'q2.yaml'))).toThrow(/q2\.yaml:3:\d+: cluster\.keyFile: \S+nothere does not exist; create it once with  \(umask 077; openssl rand -hex 32 > \S+nothere\)/);
  });

  it('reports every problem of a file in one pass: per-field, cross-field, missing files; a typo gets the nearest key', () => {
    const dir = tempDir();
    const file = join(dir, 'all.yaml');
    writeFileSync(file, [
      'cluster:',
      '  name: demo',
      '  id: 1',
      '  keyFile: cluster.key',
      'members:',
      '  - { id: 1, name: pi-a }',
      '  - { id: 1, name: pi-b }',
      'node:',
      '  name: pi-c',
      '  dataDir: data',
      'mqtt:',
      '  brokers: [mqtt://127.0.0.1:1883]',
      '  keepAliveSec: 5',
      '  passwordFile: mqtt.password',
      'raft:',
      '  heartbeatMs: fast',
      '',
    ].join('\n'));
    let err: ConfigError | undefined;
    try {
      loadConfigFile(file);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const got = err!.problems.map((p) => `${p.line} ${p.key}: ${p.message}`);
    expect(got).toEqual([
      expect.stringMatching(/^4 cluster\.keyFile: \S+cluster\.key does not exist; create it once with/),
      '7 members.1.id: expected a unique id; 1 appears twice',
      '9 node.name: expected the name of a member (pi-a, pi-b), got "pi-c"',
      '13 mqtt.keepAliveSec: unknown key "keepAliveSec"; did you mean "keepaliveSec"? (docs/config.md lists every key)',
      expect.stringMatching(/^14 mqtt\.passwordFile: \S+mqtt\.password does not exist; write this node's password of its broker account \(mqtt\.username\) into it, mode 0600; or drop mqtt\.username and mqtt\.passwordFile/),
      expect.stringMatching(/^16 raft\.heartbeatMs: expected milliseconds/),
    ]);
    // A cross-field check that only repeats a malformed field says nothing: heartbeatMs
    // is not also reported as "at most half of electionTimeoutMinMs".
    expect(got.filter((x) => x.includes('heartbeatMs'))).toHaveLength(1);
    // Far from every key: no guess, the list of keys instead.
    writeFileSync(file, good.replace('node:', 'zzzzzz: 1\nnode:'));
    expect(() => loadConfigFile(file)).toThrow(/unknown key "zzzzzz" \(expected one of: cluster, members, node,/);
  });

  it('`quorumd config validate` exits 2 naming key and line, 0 for a good file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), good.replace('id: 2,', 'id: 300,'));
    writeFileSync(join(dir, 'good.yaml'), good);
    const bin = join(root, 'bin', 'quorumd.js');
    const bad = spawnSync(process.execPath, [bin, 'config', 'validate', join(dir, 'bad.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:6:\d+: members\.1\.id: expected a node id: an integer 1\.\.254/);
    const ok = spawnSync(process.execPath, [bin, 'config', 'validate', join(dir, 'good.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/ok — node a/);
  });
});
