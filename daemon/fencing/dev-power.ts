/**
 * DEVELOPMENT ONLY: what a simulated power cut of `quorumd dev` stops.
 *
 * A real relay that cuts a board's power stops everything on it: the node, the jobs and
 * hooks it started, whatever those started. A dev "board" is a node process, and the
 * processes it starts are not all in its process group: scripts (leadership hooks,
 * scheduled jobs, daemon/shell.ts) run in process groups of their own, so that a timeout
 * reaches their children. Killing the node alone left them running — a fenced old
 * leader's job still acting, which looks exactly like split brain.
 *
 * So the supervisor marks every node process it starts with an environment variable,
 * DEV_BOARD_ENV = `<cluster>/<node>/<incarnation>`, which every process the node starts
 * inherits. At a power cut the "board" is, on Linux (/proc):
 *
 * - the node process and every process descended from it (parent pid chain), also one
 *   that left its group or session (`setsid`) while its parent still lives;
 * - every process carrying the board's mark, also one already re-parented to init or a
 *   subreaper (its parent exited), and the processes of an earlier incarnation of the
 *   node (killed with kill -9 and restarted: on a board they would still be running);
 * - the other members of the process groups of those (a job's `sleep &` whose shell has
 *   exited), never the supervisor's own group (the node processes are in it).
 *
 * The set is frozen first (SIGSTOP, repeated until a scan finds nothing new, so that
 * nothing forks past the cut), then SIGKILLed. Not covered: a process that both cleared
 * its environment (`env -i`) and was re-parented away from the node before the cut, and
 * any other system than Linux (no /proc: only the node process is killed).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The environment variable that marks the processes of a dev "board". */
export const DEV_BOARD_ENV = 'QUORUMD_DEV_BOARD';

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  /** The DEV_BOARD_ENV value of its environment at exec, if any (undefined if unreadable or absent). */
  board: string | undefined;
}

/** `/proc/<pid>/stat` → ppid and pgid. The command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`. */
export function parseStat(text: string): { ppid: number; pgid: number } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  const ppid = Number(f[1]);
  const pgid = Number(f[2]);
  return Number.isInteger(ppid) && Number.isInteger(pgid) ? { ppid, pgid } : undefined;
}

/** The processes on this machine (Linux /proc), or undefined without /proc. Processes that vanish while read are left out. */
export function readProcTable(): ProcEntry[] | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const key = Buffer.from(`${DEV_BOARD_ENV}=`);
  const out: ProcEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let st;
    try {
      st = parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
    } catch {
      continue; // gone meanwhile
    }
    if (!st) continue;
    let board: string | undefined;
    try {
      const env = readFileSync(`/proc/${pid}/environ`);
      let at = env.indexOf(key);
      // Only at the start of an entry (after a NUL or at 0).
      while (at > 0 && env[at - 1] !== 0) at = env.indexOf(key, at + 1);
      if (at >= 0) {
        const end = env.indexOf(0, at);
        board = env.subarray(at + key.length, end < 0 ? env.length : end).toString('utf8');
      }
    } catch {
      /* another user's process, or gone: not ours to read */
    }
    out.push({ pid, ppid: st.ppid, pgid: st.pgid, board });
  }
  return out;
}

/**
 * The processes of a board in `table`: `root` (the node process, if any) and its
 * descendants, those whose mark starts with `boardPrefix`, and the members of their
 * process groups (see the header). Never `self` (the supervisor), pid 1, or anything
 * in `selfPgid`. Pure: tested on made-up tables.
 */
export function boardProcesses(table: readonly ProcEntry[], root: number | undefined, boardPrefix: string, self: number, selfPgid: number): Set<number> {
  const byPid = new Map(table.map((p) => [p.pid, p]));
  const set = new Set<number>();
  const ok = (p: ProcEntry) => p.pid > 1 && p.pid !== self;
  const add = (p: ProcEntry | undefined) => {
    if (p && ok(p)) set.add(p.pid);
  };
  if (root !== undefined) add(byPid.get(root));
  for (const p of table) if (p.board !== undefined && p.board.startsWith(boardPrefix)) add(p);
  // Closure: children of members, and members of their groups (not the supervisor's).
  for (let grew = true, rounds = 0; grew && rounds < 1000; rounds++) {
    grew = false;
    const groups = new Set<number>();
    for (const pid of set) {
      const g = byPid.get(pid)!.pgid;
      // A group led by a process outside the board is not the board's (it would be some other process's group it joined).
      const leader = byPid.get(g);
      if (g !== selfPgid && g > 1 && (leader === undefined || set.has(g))) groups.add(g);
    }
    for (const p of table) {
      if (set.has(p.pid) || !ok(p)) continue;
      if (set.has(p.ppid) || groups.has(p.pgid)) {
        set.add(p.pid);
        grew = true;
      }
    }
  }
  return set;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already, or not ours */
  }
}

/** Reads this process's own process group (Linux), or undefined. */
function ownPgid(): number | undefined {
  try {
    return parseStat(readFileSync('/proc/self/stat', 'latin1'))?.pgid;
  } catch {
    return undefined;
  }
}

export interface PowerCut {
  /** Every pid SIGKILLed (the node process, if given, included). */
  killed: number[];
  /** false: no /proc (not Linux): only `root` was killed. */
  complete: boolean;
}

/**
 * Cuts a dev board's power: freezes and then SIGKILLs `root` (the node process, if it
 * still runs) and every process of the board `boardPrefix` (see the header).
 * Synchronous: when it returns, every one of them has its SIGKILL.
 */
export function cutPower(root: number | undefined, boardPrefix: string): PowerCut {
  const selfPgid = ownPgid();
  if (root !== undefined) signal(root, 'SIGSTOP'); // it starts nothing more while we look
  const frozen = new Set<number>();
  let complete = selfPgid !== undefined;
  // Freeze until a scan finds nothing new: a process may fork between a scan and its SIGSTOP.
  for (let round = 0; complete && round < 20; round++) {
    const table = readProcTable();
    if (!table) {
      complete = false;
      break;
    }
    const set = boardProcesses(table, root, boardPrefix, process.pid, selfPgid!);
    let added = 0;
    for (const pid of set) {
      if (frozen.has(pid)) continue;
      frozen.add(pid);
      signal(pid, 'SIGSTOP');
      added++;
    }
    if (added === 0) break;
  }
  if (root !== undefined) frozen.add(root);
  for (const pid of frozen) signal(pid, 'SIGKILL');
  return { killed: [...frozen], complete };
}
