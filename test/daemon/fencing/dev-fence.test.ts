/**
 * Acceptance (issue 6): in `quorumd dev`, SIGKILL of the leader's process leads to a
 * fence of that node via its simulated relay, visible in `quorumd status` and the log,
 * before the new leader becomes active; the killed node comes back after the
 * configured power-on delay and rejoins. Real child processes, bounded polling.
 * The same for engine zab (issue 16: the engine runtime fences through the same
 * code, daemon/runtime/leader-fencing.ts; its token is the epoch-start index).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../../daemon/dev.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import { statusTable } from '../../../daemon/client/commands.ts';
import { logLines, poll, status } from './helpers.ts';
import { freeBasePort } from '../../helpers/ports.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
});

for (const engine of ['raft', 'zab'] as const) describe(`quorumd dev --engine ${engine} with simulated relays`, () => {
  it('a SIGKILLed leader is fenced through its relay before the new leader is active, and rejoins after the power-on delay', async () => {
    let printed = '';
    const base = await freeBasePort(3);
    const powerOnAfterMs = 3000;
    dev = await startDev({ nodes: 3, engine, basePort: base, handleSignals: false, powerOnAfterMs, out: (s) => (printed += s) });
    process.env.QUORUMD_API_TOKEN_FILE = dev.tokenFile; // as `quorumd --data-dir <dev dir>` finds it
    expect(printed).toMatch(/relays\s+simulated: power rails held by this process/);
    const urls = dev.nodes.map((n) => n.url);

    // The leader, active with a token.
    const old = await poll('an active leader', 20_000, async () => {
      for (const n of dev!.nodes) {
        const s = await status(n.url);
        if (s.active === true && s.leader === n.name) return { node: n, term: s.term as number, token: s.token as number };
      }
      return undefined;
    });
    expect(old.token).toBeGreaterThan(0);
    expect((await status(old.node.url)).engine).toBe(engine);
    const w = await call(old.node.url, 'PUT', '/v1/kv/before', { body: 'x' });
    expect(w.status).toBe(200);
    const oldPid = old.node.child!.pid!;

    const killedAt = Date.now();
    old.node.child!.kill('SIGKILL');

    // A new leader becomes active, and says that the old one was cleared by a fence.
    const others = dev.nodes.filter((n) => n !== old.node);
    const neu = await poll('a new active leader', 30_000, async () => {
      for (const n of others) {
        const s = await status(n.url);
        if (s.active === true && s.leader === n.name && (s.term as number) > old.term) return { node: n, s };
      }
      return undefined;
    });
    const cleared = neu.s.clearedBy as Record<string, string>;
    expect(cleared[String(old.node.id)]).toBe('fenced');
    const local = (neu.s.fences as { local: Array<Record<string, unknown>> }).local;
    const rec = local.find((r) => r.target === old.node.name);
    expect(rec, JSON.stringify(local)).toBeDefined();
    expect(rec!.outcome).toBe('off');
    expect(neu.s.token as number).toBeGreaterThan(old.token);
    // A follower's /v1/leader names the new leader with its token (from its own log).
    const follower = others.find((n) => n !== neu.node)!;
    // Generous: a follower on a loaded machine may still be catching up on the new term.
    const lv = await poll('the follower reporting the new leader\'s token', 30_000, async () => {
      const v = jsonOf(await call(follower.url, 'GET', '/v1/leader', { timeoutMs: 1500 }));
      if (v.leader === neu.node.name && v.token === neu.s.token) return v;
      throw new Error(`${follower.name} says leader ${String(v.leader)} token ${String(v.token)}; expected ${neu.node.name} token ${String(neu.s.token)}`);
    });
    expect(lv.token).toBeGreaterThan(old.token);

    // The relay really went off (the supervisor saw it), after the kill.
    const off = dev.railLog.find((e) => e.node === old.node.name && !e.on);
    expect(off, JSON.stringify(dev.railLog)).toBeDefined();
    expect(old.node.powered === false || dev.railLog.some((e) => e.node === old.node.name && e.on)).toBe(true);

    // The log: the fence finished before the node became active.
    const lines = logLines(neu.node.logFile);
    const fenceIdx = lines.findIndex((l) => l.msg === `fence of n${old.node.id}: off`);
    const relayIdx = lines.findIndex((l) => l.msg === `fence: relay relay:${old.node.name}:1.1 off`);
    const activeIdx = lines.findIndex((l) => l.msg === 'active' && (l.term as number) > old.term);
    expect(relayIdx).toBeGreaterThanOrEqual(0);
    expect(fenceIdx).toBeGreaterThan(relayIdx);
    expect(activeIdx).toBeGreaterThan(fenceIdx);

    // `quorumd status`: the replicated history shows the fence, on any node.
    const table = await poll('the fence in the replicated history', 10_000, async () => {
      const t = await statusTable(others.map((n) => n.url));
      return new RegExp(`#\\d+ ${old.node.name} off by ${neu.node.name}`).test(t) ? t : undefined;
    });
    expect(table).toMatch(new RegExp(`^${neu.node.name}\\s+\\S+\\s+leader\\s+\\d+\\s+${neu.node.name}\\s+yes`, 'm'));

    // The killed node is powered on after the delay, boots, and rejoins as a follower.
    const back = await poll('the fenced node back up and caught up', 30_000, async () => {
      const c = old.node.child;
      if (!c || c.pid === oldPid) return undefined;
      const s = await status(old.node.url);
      if (s.role !== 'follower' || s.leader !== neu.node.name) return undefined;
      const r = await call(old.node.url, 'GET', '/v1/kv/before?stale', { timeoutMs: 1500 });
      return r.status === 200 && r.body.toString() === 'x' ? s : undefined;
    });
    expect(back.active).toBe(false);
    const offAt = dev.railLog.find((e) => e.node === old.node.name && !e.on)!.atMs;
    const onAt = dev.railLog.find((e) => e.node === old.node.name && e.on)!.atMs;
    expect(onAt - offAt).toBeGreaterThanOrEqual(powerOnAfterMs - 50);
    // A write through the rejoined node reaches the new leader.
    const w2 = await call(old.node.url, 'PUT', '/v1/kv/after', { body: 'y' });
    expect(w2.status).toBe(200);
    expect(Date.now() - killedAt).toBeLessThan(60_000);
    // Only one fence: nobody fenced a healthy node.
    expect(dev.railLog.filter((e) => !e.on).map((e) => e.node)).toEqual([old.node.name]);
    for (const u of urls) expect((await status(u)).selfFencing).toBe(false);

    await dev.stop();
    dev = undefined;
  }, 90_000);
});
