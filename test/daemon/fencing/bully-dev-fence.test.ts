/**
 * Acceptance (bully fencing in the daemon): in `quorumd dev --engine bully`, SIGKILL of
 * the coordinator's process leads to a fence of that node via its simulated relay,
 * visible in `quorumd status` and the log, before the new coordinator becomes active;
 * the killed node comes back after the configured power-on delay and rejoins (it has
 * the highest priority, so it preempts; the coordinator it preempts acknowledges its
 * step-down, so nobody fences a healthy node). Before that, `fence confirm` of a running
 * member is refused: by the coordinator, which hears the members' reports (409
 * node-alive), and by a follower, which cannot judge (409 not-leader). Real child
 * processes, bounded polling.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../../daemon/dev.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import { fenceConfirm, statusTable } from '../../../daemon/client/commands.ts';
import { capture } from '../../helpers/capture.ts';
import { logLines, poll, status } from './helpers.ts';
import { freeBasePort } from '../../helpers/ports.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
});

describe('quorumd dev --engine bully with simulated relays', () => {
  it('a SIGKILLed coordinator is fenced through its relay before the new one is active, and rejoins after the power-on delay', async () => {
    let printed = '';
    const base = await freeBasePort(3);
    const powerOnAfterMs = 3000;
    dev = await startDev({ nodes: 3, engine: 'bully', basePort: base, handleSignals: false, powerOnAfterMs, out: (s) => (printed += s), readyTimeoutMs: 60_000 });
    process.env.QUORUMD_API_TOKEN_FILE = dev.tokenFile; // as `quorumd --data-dir <dev dir>` finds it
    expect(printed).toMatch(/relays\s+simulated: power rails held by this process/);
    const [n1, n2, n3] = dev.nodes as [DevCluster['nodes'][number], DevCluster['nodes'][number], DevCluster['nodes'][number]];

    // n3 (highest priority) coordinates, active with its token; STONITH mode with a relay per other node.
    const old = await poll('n3 active', 20_000, async () => {
      const s = await status(n3.url);
      return s.active === true && s.leader === 'n3' ? s : undefined;
    });
    expect(old.fencingMode).toBe('stonith');
    expect((old.relays as Array<{ target: string; type: string }>).map((r) => `${r.target}:${r.type}`).sort()).toEqual(['n1:dev-relay', 'n2:dev-relay']);
    const oldTerm = old.term as number;
    const oldToken = old.token as number;
    expect(oldToken).toBe(oldTerm * 256 + 3);
    // Fence endpoints answer for bully: self and unknown members are refused.
    expect((await call(n3.url, 'POST', '/v1/fence/n3', { timeoutMs: 2000 })).status).toBe(400);
    expect((await call(n3.url, 'POST', '/v1/fence/nobody/confirm', { timeoutMs: 2000 })).status).toBe(404);
    // fence confirm of a running member: the coordinator hears the member's reports and
    // refuses (it may answer 503 while it has coordinated for less than a second);
    // a follower cannot judge and names the coordinator. Nothing is recorded.
    const viaCoordinator = await poll('n3 to judge n1', 20_000, async () => {
      const r = await call(n3.url, 'POST', '/v1/fence/n1/confirm', { timeoutMs: 2000 });
      return r.status === 503 ? undefined : r;
    });
    expect(viaCoordinator.status).toBe(409);
    expect(jsonOf(viaCoordinator)).toMatchObject({ code: 'node-alive', error: expect.stringMatching(/^n1 is alive: this node accepted an authenticated message from it \d+ ms ago/) });
    const viaFollower = await call(n2.url, 'POST', '/v1/fence/n1/confirm', { timeoutMs: 2000 });
    expect(viaFollower.status).toBe(409);
    expect(jsonOf(viaFollower)).toMatchObject({ code: 'not-leader', error: 'n2 is not the coordinator (n3 is): a bully follower hears only its coordinator, so it cannot tell whether n1 is alive; confirm on the coordinator n3' });
    // `quorumd fence confirm n1 --node <n2>,<n3>`: the follower's not-leader goes on to the
    // coordinator, whose judgement (alive) is the answer.
    const viaList = capture();
    expect(await fenceConfirm(`${n2.url},${n3.url}`, 'n1', viaList.io)).toBe(1);
    expect(viaList.err).toMatch(/^quorumd fence confirm: 409: n1 is alive: this node accepted an authenticated message from it \d+ ms ago/);
    expect(viaList.err).toMatch(/passed over before it: POST .*\/v1\/fence\/n1\/confirm: 409 not-leader: n2 is not the coordinator \(n3 is\)/);
    for (const n of dev.nodes) expect(((await status(n.url)).fences as { local: unknown[] }).local).toEqual([]);
    const oldPid = n3.child!.pid!;

    n3.child!.kill('SIGKILL');

    // n2 becomes the active coordinator, and says that n3 was cleared by a fence.
    const neu = await poll('n2 active', 20_000, async () => {
      const s = await status(n2.url);
      return s.active === true && s.leader === 'n2' && (s.term as number) > oldTerm ? s : undefined;
    });
    expect((neu.clearedBy as Record<string, string>)['3']).toBe('fenced');
    const rec = (neu.fences as { local: Array<Record<string, unknown>> }).local.find((r) => r.target === 'n3');
    expect(rec, JSON.stringify(neu.fences)).toBeDefined();
    expect(rec!.outcome).toBe('off');
    expect(neu.token as number).toBeGreaterThan(oldToken);
    expect((await status(n1.url)).active).toBe(false);

    // The relay really went off (the supervisor saw it).
    expect(dev.railLog.find((e) => e.node === 'n3' && !e.on), JSON.stringify(dev.railLog)).toBeDefined();

    // The log: relay off, then the fence verified, then active — in that order.
    const lines = logLines(n2.logFile);
    const relayIdx = lines.findIndex((l) => l.msg === 'fence: relay relay:n3:1.1 off');
    const fenceIdx = lines.findIndex((l) => l.msg === 'fence of n3: off');
    const activeIdx = lines.findIndex((l) => l.msg === 'active' && (l.epoch as number) > oldTerm);
    expect(relayIdx).toBeGreaterThanOrEqual(0);
    expect(fenceIdx).toBeGreaterThan(relayIdx);
    expect(activeIdx).toBeGreaterThan(fenceIdx);
    // Hooks run on activation, with the activation's token.
    expect(lines.some((l) => typeof l.msg === 'string' && l.msg === 'became active leader' && l.token === neu.token)).toBe(true);

    // `quorumd status` (asked at every node: bully keeps no replicated history, so the
    // table merges what each node ran): the fence, and n2 active with its token.
    const table = await statusTable(dev.nodes.map((n) => n.url));
    expect(table).toMatch(/#\d+ n3 off by n2/);
    expect(table).toContain('fence history (merged from the nodes that answered');
    expect(table).toMatch(new RegExp(`n2 active with fencing token ${neu.token as number}`));

    // n3 is powered on after the delay, boots, and takes over again (preempt), without a second fence.
    const back = await poll('n3 back and active again', 25_000, async () => {
      const c = n3.child;
      if (!c || c.pid === oldPid) return undefined;
      const s = await status(n3.url);
      if (s.active !== true || s.leader !== 'n3') return undefined;
      const s2 = await status(n2.url);
      return s2.leader === 'n3' && s2.active === false ? s : undefined;
    });
    expect(back.token as number).toBeGreaterThan(neu.token as number);
    // n3 heard n2 coordinate before it took over: n2 is cleared, by its acknowledgement, not a fence.
    const cleared = back.clearedBy as Record<string, string>;
    if (cleared['2'] !== undefined) expect(cleared['2']).toBe('acknowledged');
    const offAt = dev.railLog.find((e) => e.node === 'n3' && !e.on)!.atMs;
    const onAt = dev.railLog.find((e) => e.node === 'n3' && e.on)!.atMs;
    expect(onAt - offAt).toBeGreaterThanOrEqual(powerOnAfterMs - 50);
    expect(dev.railLog.filter((e) => !e.on).map((e) => e.node)).toEqual(['n3']);
    const m = (await call(n2.url, 'GET', '/metrics', { timeoutMs: 1500 })).body.toString();
    expect(m).toMatch(/^quorumd_fences_total\{outcome="off"\} 1$/m);

    await dev.stop();
    dev = undefined;
  }, 120_000);
});
