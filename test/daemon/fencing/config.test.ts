/**
 * The `fencing:` config section: valid files build into HAL devices and the runtime's
 * fencing options; every mistake is an error naming the key and its line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../daemon/config/load.ts';
import { buildFencing } from '../../../daemon/fencing/build.ts';

const tmp = mkdtempSync(join(tmpdir(), 'quorumd-fencecfg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const head = `cluster: { name: c, key: ${'ab'.repeat(16)} }
members:
  - { id: 1, name: pi-a }
  - { id: 2, name: pi-b }
  - { id: 3, name: pi-c }
  - { id: 9, name: wit, role: witness }
node: { name: pi-a, dataDir: /tmp/x }
mqtt: { brokers: [mqtt://127.0.0.1:1883] }
`;

function problems(text: string): string {
  try {
    parseConfigText(head + text, 'f.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a ConfigError');
}
const lineOf = (text: string, needle: string) => (head + text).split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('fencing config', () => {
  it('a full section parses with its defaults and builds devices, senses and fencer targets', () => {
    const sys = join(tmp, 'sys');
    mkdirSync(join(sys, 'class', 'leds', 'fence-b'), { recursive: true });
    writeFileSync(join(sys, 'class', 'leds', 'fence-b', 'brightness'), '0');
    const wd = join(tmp, 'watchdog');
    writeFileSync(wd, '');
    const c = parseConfigText(
      head +
        `fencing:
  watchdog: { path: ${wd}, timeoutMs: 5000 }
  randomDelayMaxMs: 100
  activation: { leaseMs: 400 }
  targets:
    - node: pi-b
      delayMs: 2000
      levels:
        - - { type: gpio-relay, backend: led, led: fence-b, root: ${sys}, sense: { backend: gpioget, chip: gpiochip0, line: 27 } }
        - - { type: serial-relay, path: /dev/ttyUSB-none, channel: 2 }
        - - { type: watchdog-wait, waitMs: 20000 }
    - node: pi-c
      action: off
      levels: [[{ type: dev-relay, url: "http://127.0.0.1:9" }]]
`,
      'f.yaml',
    );
    const f = c.fencing!;
    expect(f.stonith).toBe(true);
    expect(f.targets[0]!.action).toBe('reboot');
    expect(f.targets[0]!.powerOnAfterMs).toBe(10_000);
    const warn: string[] = [];
    const b = buildFencing(f, { members: c.members, selfId: 1, log: { warn: (_f, m) => warn.push(m), error: (_f, m) => warn.push(m) } });
    try {
      expect(b.devices.map((d) => d.name)).toEqual(['relay:pi-b:1.1', 'relay:pi-b:2.1', 'wait:pi-b:3.1', 'relay:pi-c:1.1']);
      expect(b.devices[0]!.sense).toBe('sense:pi-b:1.1');
      expect(b.options.relays!.map((r) => r.name)).toEqual(['relay:pi-b:1.1', 'relay:pi-b:2.1', 'relay:pi-c:1.1']);
      expect(b.options.powerSense!.map((p) => p.name)).toEqual(['sense:pi-b:1.1']);
      expect(b.options.fencer!.targets).toEqual([
        {
          target: 2,
          action: 'reboot',
          powerOnAfterMs: 10_000,
          delayMs: 2000,
          levels: [[{ kind: 'gpio-relay', relay: 'relay:pi-b:1.1', sense: 'sense:pi-b:1.1' }], [{ kind: 'serial-relay', relay: 'relay:pi-b:2.1' }], [{ kind: 'watchdog-wait', waitMs: 20000 }]],
        },
        { target: 3, action: 'off', powerOnAfterMs: 10_000, delayMs: 0, levels: [[{ kind: 'gpio-relay', relay: 'relay:pi-c:1.1' }]] },
      ]);
      expect(b.options.fencer!.randomDelayMaxMs).toBe(100);
      expect(b.options.activation).toEqual({ leaseMs: 400 });
      expect(b.options.watchdog?.timeoutMs).toBe(5000);
      expect(b.options.watchdogTimeoutMs).toBeUndefined();
      // The LED relay is the real backend: off cuts power (NC wiring, active = 1).
      const led = b.options.relays![0]!;
      return new Promise<void>((resolve, reject) =>
        led.set(false, (err) => {
          try {
            expect(err).toBeNull();
            expect(readFileSync(join(sys, 'class', 'leds', 'fence-b', 'brightness'), 'utf8')).toBe('1');
            resolve();
          } catch (e) {
            reject(e);
          }
        }),
      ).then(
        () =>
          // A serial relay board that is not there fails the operation with the path named (the level fails; not the start).
          new Promise<void>((resolve) =>
            b.options.relays![1]!.read((err) => {
              expect(err?.message).toMatch(/ttyUSB-none/);
              resolve();
            }),
          ),
      );
    } finally {
      b.close();
      b.watchdog?.disarm();
    }
  });

  it('stonith: false keeps the devices listed but gives the runtime no targets; without a watchdog the assumed timeout is passed', () => {
    const c = parseConfigText(head + `fencing:\n  stonith: false\n  watchdogTimeoutMs: 3000\n  targets: [{ node: pi-b, levels: [[{ type: watchdog-wait, waitMs: 5000 }]] }]\n`, 'f.yaml');
    const b = buildFencing(c.fencing!, { members: c.members, selfId: 1, log: { warn: () => {}, error: () => {} } });
    expect(b.devices).toHaveLength(1);
    expect(b.options.fencer!.targets).toEqual([]);
    expect(b.options.watchdogTimeoutMs).toBe(3000);
    expect(b.watchdog).toBeUndefined();
  });

  it('with fencing (lease reads) and the will hint, 1.5 × mqtt keepalive must exceed the minimum election timeout', () => {
    const long = `raft: { electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000, heartbeatMs: 500 }\nfencing:\n  stonith: false\n`;
    // The head's mqtt section has the default keepalive (5 s): give it 1 s.
    expect(() => parseConfigText(head + long, 'f.yaml')).not.toThrow();
    const with1s = (head + long).replace('mqtt: { brokers: [mqtt://127.0.0.1:1883] }', 'mqtt: { brokers: [mqtt://127.0.0.1:1883], keepaliveSec: 1 }');
    let err: unknown;
    try {
      parseConfigText(with1s, 'f.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/mqtt\.keepaliveSec.*1\.5 × keepaliveSec \(1500 ms\) above raft\.electionTimeoutMinMs \(1500 ms\)/);
    // Fine without the hint, or with a longer keepalive.
    expect(() => parseConfigText(with1s.replace('heartbeatMs: 500 }', 'heartbeatMs: 500, campaignOnPeerGone: false }'), 'f.yaml')).not.toThrow();
    expect(() => parseConfigText(with1s.replace('keepaliveSec: 1 }', 'keepaliveSec: 2 }'), 'f.yaml')).not.toThrow();
  });

  it('a watchdog device that does not open is an error naming the key', () => {
    const c = parseConfigText(head + `fencing:\n  watchdog: { path: ${join(tmp, 'no', 'such')} }\n`, 'f.yaml');
    expect(() => buildFencing(c.fencing!, { members: c.members, selfId: 1, log: { warn: () => {}, error: () => {} } })).toThrow(/^fencing\.watchdog: .*no\/such/);
  });

  const bad: Array<[string, string, string, RegExp]> = [
    ['unknown device type', `fencing:\n  targets:\n    - node: pi-b\n      levels: [[{ type: laser, x: 1 }]]\n`, 'laser', /fencing\.targets\.0\.levels\.0\.0(\.type)?: .*gpio-relay, serial-relay, watchdog-wait or dev-relay/],
    ['target not a member', `fencing:\n  targets:\n    - node: pi-z\n      levels: [[{ type: watchdog-wait, waitMs: 1 }]]\n`, 'pi-z', /fencing\.targets\.0\.node: expected a member name \(pi-a, pi-b, pi-c, wit\), got "pi-z"/],
    ['self target', `fencing:\n  targets:\n    - node: pi-a\n      levels: [[{ type: watchdog-wait, waitMs: 1 }]]\n`, 'node: pi-a', /fencing\.targets\.0\.node: expected another member: a node never fences itself/],
    ['witness target', `fencing:\n  targets:\n    - node: wit\n      levels: [[{ type: watchdog-wait, waitMs: 1 }]]\n`, 'node: wit', /fencing\.targets\.0\.node: expected a voter: wit is a witness/],
    ['led backend without led', `fencing:\n  targets:\n    - node: pi-b\n      levels:\n        - - { type: gpio-relay, backend: led }\n`, 'backend: led', /fencing\.targets\.0\.levels\.0\.0\.led: missing: expected the LED class name/],
    ['channel above channels', `fencing:\n  targets:\n    - node: pi-b\n      levels:\n        - - { type: serial-relay, path: /dev/ttyUSB0, channel: 5, channels: 4 }\n`, 'channel: 5', /fencing\.targets\.0\.levels\.0\.0\.channel: expected a channel 1\.\.4/],
    ['dev relay off loopback', `fencing:\n  targets:\n    - node: pi-b\n      levels:\n        - - { type: dev-relay, url: "http://10.0.0.1:80" }\n`, '10.0.0.1', /fencing\.targets\.0\.levels\.0\.0\.url: expected a loopback URL .*only for `quorumd dev`/],
    ['negative delay', `fencing:\n  targets:\n    - node: pi-b\n      delayMs: -5\n      levels: [[{ type: watchdog-wait, waitMs: 1 }]]\n`, 'delayMs', /fencing\.targets\.0\.delayMs: expected milliseconds: an integer 0\.\.86400000/],
    ['empty levels', `fencing:\n  targets:\n    - node: pi-b\n      levels: []\n`, 'levels', /fencing\.targets\.0\.levels: expected at least one fence level/],
    ['unknown key', `fencing:\n  stonit: false\n`, 'stonit', /fencing\.stonit: unknown key "stonit"/],
    ['waitForAll with a non-member', `fencing:\n  waitForAll: [pi-a, pi-x]\n`, 'waitForAll', /fencing\.waitForAll\.1: expected a member name \(pi-a, pi-b, pi-c, wit\), got "pi-x"/],
    ['same target twice', `fencing:\n  targets:\n    - { node: pi-b, levels: [[{ type: watchdog-wait, waitMs: 1 }]] }\n    - { node: pi-b, levels: [[{ type: watchdog-wait, waitMs: 2 }]] }\n`, 'waitMs: 2', /fencing\.targets\.1\.node: expected each member once/],
  ];
  for (const [what, text, needle, re] of bad) {
    it(`rejects ${what} with key and line`, () => {
      const msg = problems(text);
      expect(msg).toMatch(re);
      const line = Number(/^f\.yaml:(\d+):/m.exec(msg.split('\n').find((l) => re.test(l))!)![1]);
      expect(line).toBe(lineOf(text, needle));
    });
  }
});
