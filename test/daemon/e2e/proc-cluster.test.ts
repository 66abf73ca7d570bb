/**
 * The end-to-end harness (proc-cluster.ts) itself: a node that cannot start makes
 * waitLeader fail at once, naming the node and showing its log, instead of a cluster
 * that elects with the others and a test that fails later at a call to the missing node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ProcCluster } from './proc-cluster.ts';

describe('ProcCluster', () => {
  let c: ProcCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('waitLeader fails, naming the node, when a node exits by itself while the cluster starts', async () => {
    // n3's config carries a key no config has: the node refuses it and exits (code 2, a usage error).
    c = await ProcCluster.start(3, '', (k) => (k === 3 ? 'noSuchSetting: 1\n' : ''));
    const err = await c.waitLeader(60_000).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/a node exited while the cluster started \(n3: exit code 2\)/);
    expect(err?.message).toContain('noSuchSetting');
    // The two others elected meanwhile or will: the harness only refused to hide n3.
    expect(c.failedExits).toEqual([{ name: 'n3', code: 2 }]);
  }, 90_000);
});
