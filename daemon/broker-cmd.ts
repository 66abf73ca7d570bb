/**
 * `quorumd broker [--port 1883] [--host 127.0.0.1]`: a standalone embedded aedes
 * broker (hal/mqtt/broker.ts) for boards without mosquitto. Open (no accounts) and on
 * 127.0.0.1 by default; put it on the LAN with --host and prefer mosquitto with
 * accounts and TLS for production (docs/install-pi.md).
 */
import { startBroker, type RunningBroker } from '../hal/mqtt/broker.ts';

export interface BrokerCmdOptions {
  port: number;
  host?: string;
}

export async function runBroker(opts: BrokerCmdOptions): Promise<RunningBroker> {
  const b = await startBroker({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  process.stdout.write(`quorumd broker: listening on mqtt://${b.host}:${b.port} (Ctrl-C stops it)\n`);
  const stop = () => {
    b.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return b;
}
