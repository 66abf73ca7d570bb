import { NotImplementedError } from './cli.ts';

export async function runSimCommand(_opts: Record<string, unknown>): Promise<number> {
  throw new NotImplementedError('quorumd sim', 'issue 3 (Raft engine in the simulator)');
}
