/**
 * `quorumd dev --jobs FILE` in the supervisor: the file is read and checked by a
 * short-lived child (`quorumd config validate-jobs FILE --json`), not in the
 * supervisor itself.
 *
 * Why a child: checking a jobs file takes the YAML parser, zod with the config
 * schemas and node-cron (daemon/config/load.ts), ~0.4 MB of JavaScript whose source,
 * code and schema objects a process keeps to its end once loaded (an ES module is
 * never unloaded). The supervisor needs none of it after this one check, and it
 * stays up for the whole dev session: with the check in-process its idle RSS was
 * ~3.5 MiB higher (issue 14: supervisor idle ≤ 60 MiB). The child costs one short
 * node start before the cluster starts: ~0.2 s wall against ~0.12 s for the check
 * in-process, so `dev --jobs` reaches its first write ~0.1 s later. A worker thread
 * was tried and kept the memory (the supervisor stayed at 60–61 MiB). The child's
 * errors are the same ConfigError text as the in-process check (file:line:col: key:
 * what was expected).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import type { JobConfig } from './jobs.ts';
import { cliCommand } from '../cli-path.ts';

/** A jobs file the child refused: its message as `loadJobsFile` would have thrown it (cli.ts prints ConfigErrors). */
class JobsFileError extends Error {
  override readonly name = 'ConfigError';
}

/** The jobs of `file`, checked as in a node config; throws a ConfigError-named Error naming each problem. */
export async function loadJobsFileApart(file: string): Promise<JobConfig[]> {
  const r = spawnSync(process.execPath, [cliCommand().bin, 'config', 'validate-jobs', file, '--json'], {
    encoding: 'utf8',
    // Plain node for the child: no loader (NODE_OPTIONS of a test runner) and no
    // start-up trace lines of its own. When this process came through the bin, dist/ is
    // known fresh: the child skips the walk over the sources (as dev's nodes do).
    env: { ...process.env, NODE_OPTIONS: '', QUORUMD_TRACE_START: '', ...((globalThis as { quorumdBuildChecked?: boolean }).quorumdBuildChecked === true ? { QUORUMD_BUILD_CHECKED: '1' } : {}) },
    timeout: 60_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  const out = childOutcome(r, file);
  if (out !== 'in-process') return out;
  // The child could not be started (no fork possible, no memory): check in this process
  // instead; the result is the same, only the memory stays.
  const { loadJobsFile } = await import('./load.ts');
  return loadJobsFile(file);
}

/**
 * What the checking child's end means: the jobs it printed; a ConfigError-named error
 * with its message (a bad file); 'in-process' when it could not be started at all. A
 * child that started and was then killed — its 60 s limit, or a signal from outside —
 * is an error too, not a reason to check again here: the same file would hang or kill
 * the supervisor the same way (before config files were opened only when regular, a
 * named pipe did exactly that).
 */
export function childOutcome(r: Pick<SpawnSyncReturns<string>, 'status' | 'signal' | 'error' | 'stdout' | 'stderr'>, file: string): JobConfig[] | 'in-process' {
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (r.status === null && (r.signal !== null || code === 'ETIMEDOUT')) {
    const how = code === 'ETIMEDOUT' ? 'was stopped after 60 s' : `was killed (${String(r.signal)})`;
    throw new JobsFileError(`checking the jobs file ${file} did not finish: the check ${how}; expected a regular YAML file of at most 1 MiB`);
  }
  if (r.error !== undefined || r.status === null) return 'in-process';
  if (r.status !== 0) {
    const msg = r.stderr.replace(/^quorumd: invalid configuration:\n/, '').replace(/^quorumd: /, '').trimEnd();
    throw new JobsFileError(msg || `checking the jobs file ${file} failed (exit status ${r.status})`);
  }
  try {
    return JSON.parse(r.stdout) as JobConfig[];
  } catch (err) {
    throw new Error(`checking the jobs file ${file}: unexpected output of \`quorumd config validate-jobs\`: ${(err as Error).message}`);
  }
}
