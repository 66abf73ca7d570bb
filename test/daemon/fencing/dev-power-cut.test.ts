/**
 * `quorumd dev`'s simulated power cut stops everything on the "board": the node process
 * and what it started — scheduled job runs and hooks in process groups of their own
 * (daemon/shell.ts), also one already orphaned by a kill -9 of the node — and
 * `quorumd dev`'s stop leaves none of them behind. Before, a fenced old leader's job run
 * (`sleep`) kept running after the cut: it looked like split brain.
 *
 * Real processes: a dev cluster whose one job runs a `sleep` with a unique argument
 * every second on the active leader; rails switched through the rail server as a fence
 * device does; bounded polling on /proc.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster, type DevNode } from '../../../daemon/dev.ts';
import { boardProcesses, parseStat, type ProcEntry } from '../../../daemon/fencing/dev-power.ts';
import { freeBasePort } from '../../helpers/ports.ts';
import { killProcessesUsing, processesUsing } from '../../helpers/procs.ts';
import { poll } from './helpers.ts';

const marker = `1000.${randomInt(1_000_000_000)}`;
let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
  killProcessesUsing(marker); // whatever a failed run left
});

/** The job runs naming the marker, with the node that started the run's shell (undefined once orphaned). */
function runs(d: DevCluster): Array<{ pid: number; node: DevNode | undefined }> {
  return processesUsing(marker).map((pid) => {
    let ppid = -1;
    try {
      ppid = parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'))?.ppid ?? -1;
    } catch {
      /* gone meanwhile */
    }
    return { pid, node: d.nodes.find((n) => n.child?.pid === ppid) };
  });
}

/** Waits for a job run started by a node (its /bin/sh: parent = a node process), and returns that node and the pids of the run. */
async function runningJob(d: DevCluster, not: DevNode[] = []): Promise<{ node: DevNode; pids: number[] }> {
  return poll('a job run on the active leader', 60_000, async () => {
    const shell = runs(d).find((r) => r.node !== undefined && !not.includes(r.node));
    if (!shell) return undefined;
    // The sleep under it (sh forks it: the command goes on after it).
    const pids = runs(d).map((r) => r.pid);
    return pids.length >= 2 ? { node: shell.node!, pids } : undefined;
  });
}

async function rail(d: DevCluster, node: string, on: boolean): Promise<void> {
  const token = readFileSync(d.tokenFile, 'utf8').trim();
  const r = await fetch(`${d.rails!.url}/rail/${node}?on=${on ? 1 : 0}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  expect(r.status).toBe(200);
}

/** Bounded: every one of `pids` gone (a zombie has no command line: gone). */
async function gone(pids: number[], what: string): Promise<void> {
  await poll(what, 10_000, async () => (pids.every((p) => !processesUsing(marker).includes(p)) ? true : undefined));
}

describe('boardProcesses (which processes a dev power cut stops)', () => {
  const P = (pid: number, ppid: number, pgid: number, board?: string): ProcEntry => ({ pid, ppid, pgid, board });
  // 100 = the supervisor (group 100), 200 = the node (in the supervisor's group).
  const table = [
    P(1, 0, 1),
    P(100, 1, 100),
    P(200, 100, 100, 'c/n1/a'),
    P(300, 200, 300, 'c/n1/a'), // a job's sh, its own group
    P(301, 300, 300, 'c/n1/a'), // its sleep
    P(302, 1, 300), // left in the job's group, parent gone, environment cleared
    P(400, 300, 400), // setsid under the job's sh, environment cleared
    P(500, 1, 500, 'c/n1/old'), // an earlier incarnation's orphaned run
    P(600, 100, 100, 'c/n2/b'), // another node
    P(601, 600, 601, 'c/n2/b'),
    P(700, 1, 700), // unrelated
    P(701, 1, 100), // unrelated, in the supervisor's group
  ];
  it('takes the node, its descendants, the board\'s marked processes and their groups; never the supervisor, its group, another board', () => {
    expect([...boardProcesses(table, 200, 'c/n1/', 100, 100)].sort((a, b) => a - b)).toEqual([200, 300, 301, 302, 400, 500]);
  });
  it('finds the orphaned runs by their mark once the node process is gone (and the setsid one through its living parent)', () => {
    const t = table.filter((p) => p.pid !== 200).map((p) => (p.ppid === 200 ? { ...p, ppid: 1 } : p));
    expect([...boardProcesses(t, undefined, 'c/n1/', 100, 100)].sort((a, b) => a - b)).toEqual([300, 301, 302, 400, 500]);
  });
  it('parses /proc/<pid>/stat with spaces and parentheses in the command name', () => {
    expect(parseStat('42 (a b) c)) S 7 42 42 0 -1')).toEqual({ ppid: 7, pgid: 42 });
    expect(parseStat('garbage')).toBeUndefined();
  });
});

describe('quorumd dev: a simulated power cut stops everything the node started', () => {
  it('a fenced leader\'s job run, an orphaned run of a kill -9ed node and the runs left at stop are all stopped', async () => {
    let printed = '';
    const base = await freeBasePort(3);
    // powerOnAfterMs long: the fences' power-ons stay out of this test; it switches rails itself.
    dev = await startDev({
      nodes: 3,
      engine: 'raft',
      basePort: base,
      handleSignals: false,
      powerOnAfterMs: 600_000,
      progress: () => {},
      out: (s) => (printed += s),
      jobs: [{ name: 'long', cron: '* * * * * *', command: `sleep ${marker}; echo done`, timeoutMs: 600_000, timezone: 'UTC', overlap: 'skip' }],
    });
    const d = dev;

    // 1. The leader's run; its rail off (what the new leader's fence device does): the run stops with it.
    const first = await runningJob(d);
    await rail(d, first.node.name, false);
    await gone(first.pids, `the job run of ${first.node.name} (pids ${first.pids.join(', ')}) to stop with its power cut`);
    expect(printed).toMatch(new RegExp(`relay of ${first.node.name}: power OFF \\(fenced: SIGKILL pid \\d+ and \\d+ process(es)? it started, kept down\\)`));

    // 2. The next leader's run, orphaned by a kill -9 of the node (a crash: on a board the run would go on) ...
    const second = await runningJob(d, [first.node]);
    process.kill(second.node.child!.pid!, 'SIGKILL');
    await poll('the run to be orphaned', 10_000, async () => (runs(d).some((r) => r.node === undefined) ? true : undefined));
    expect(second.pids.every((p) => processesUsing(marker).includes(p))).toBe(true);
    // ... stops when that board's power is cut.
    await rail(d, second.node.name, false);
    await gone(second.pids, `the orphaned job run of ${second.node.name} (pids ${second.pids.join(', ')}) to stop with its power cut`);

    // 3. Power the first back on: a quorum again, a run; kill -9 its node (no quorum left, no fence) and stop dev.
    await rail(d, first.node.name, true);
    const third = await runningJob(d, [second.node]);
    process.kill(third.node.child!.pid!, 'SIGKILL');
    await poll('the run to be orphaned', 10_000, async () => (runs(d).some((r) => r.node === undefined) ? true : undefined));
    await d.stop();
    await gone(third.pids, `the orphaned job run of ${third.node.name} (pids ${third.pids.join(', ')}) to stop with quorumd dev`);
    expect(processesUsing(marker)).toEqual([]);
    expect(printed).toMatch(/\[dev\] stopped \d+ process(es)? the nodes had started/);
  }, 240_000);
});
