/**
 * The embeddable API: `import { startNode } from 'quorumd'` runs a node inside a
 * Node.js application, with the same config file (or object) as `quorumd start`.
 * docs/api.md has an example.
 *
 *   const node = await startNode('/etc/quorumd/quorumd.yaml');
 *   node.url            // HTTP API of this node
 *   node.runtime        // put/get/del/lock* with callbacks (daemon/runtime)
 *   node.backend.onLeadership = (ev) => ...   // replaces the hook runner's listener
 *   await node.stop();  // hands leadership over, then stops
 */
export { startNode, type RunningNode, type StartOptions } from './start.ts';
// engine: etcd | zookeeper (the etcd and ZooKeeper clients load with this module only when used).
export async function startExternalNode(...args: Parameters<typeof import('./engines/start.ts').startExternalNode>): ReturnType<typeof import('./engines/start.ts').startExternalNode> {
  return (await import('./engines/start.ts')).startExternalNode(...args);
}
export type { RunningExternalNode } from './engines/start.ts';
export type { ExternalEngine, ActivationEvent, ExternalStatus } from './engines/types.ts';
export { loadConfigFile, parseConfigText, parseConfigWithPositions, resolveConfig, ConfigError, type ResolvedConfig } from './config/load.ts';
export type { Config } from './config/schema.ts';
export { startApiServer, type ApiServer, type HttpOptions } from './http/server.ts';
export type { ApiBackend } from './http/backend.ts';
export { call as httpCall } from './client/http.ts';
// Engine pbft: a client that trusts a result only with f + 1 matching signed replies.
export { PbftClient, PbftClientError, type PbftClientOptions, type CertifiedResult } from './client/pbft.ts';
export { runWorkload, historyToJsonLines } from './client/workload.ts';
export { startDev, type DevCluster, type DevOptions } from './dev.ts';
export { HookRunner, type HookEvent } from './hooks.ts';
export type { ClientResult } from './runtime/results.ts';
