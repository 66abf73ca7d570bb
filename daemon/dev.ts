import { NotImplementedError } from './cli.ts';

export interface DevOptions {
  nodes: number;
  engine: string;
  basePort: number;
}

export async function runDev(_opts: DevOptions): Promise<void> {
  throw new NotImplementedError('quorumd dev', 'issues 3-5 (Raft engine, links, daemon)');
}
