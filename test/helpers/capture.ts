import { spawnTied } from './tied.ts';
import { join } from 'node:path';

/** An `io` for the CLI's command functions (daemon/client/commands.ts) that keeps what they print. */
export function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (s: string | Uint8Array) => void (out += typeof s === 'string' ? s : Buffer.from(s).toString()), err: (s: string) => void (err += s) },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

/** Runs the real `quorumd` CLI (bin/quorumd.js) as a child process with the API token in its environment; killed after 60 s. */
export function runCli(args: string[], token: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawnTied(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js'), ...args], { env: { ...process.env, QUORUMD_API_TOKEN: token } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}
