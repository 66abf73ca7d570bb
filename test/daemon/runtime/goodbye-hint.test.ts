/**
 * A peer's orderly goodbye on the brokers as a hint (the MQTT link's peer-goodbye,
 * passed on by daemon/start.ts peerGoneFilter with goodbyeIsGone): every engine but
 * bully turns it on — a PBFT primary stopped by SIGTERM cannot hand over, and its
 * backups otherwise waited the whole view-change timeout (4.3-5.5 s on real processes
 * over mqtt, bench/chaos-soak.ts term-leader); a Raft, Paxos or ZAB leader whose
 * hand-over did not finish left its followers an election timeout.
 * Real MqttLinks through the embedded broker on 127.0.0.1; every wait is a bounded poll.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import type { LinkEvent } from '../../../hal/interfaces.ts';
import { peerGoneFilter } from '../../../daemon/start.ts';
import { closeLink, testLink, waitFor, type TestLink } from '../../hal/mqtt/helpers.ts';

const open: TestLink[] = [];
function link(...args: Parameters<typeof testLink>): TestLink {
  const t = testLink(...args);
  open.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => closeLink(t.link)));
});
/** Node `t` stops in order: its link publishes the goodbye and disconnects. */
async function bye(t: TestLink): Promise<void> {
  open.splice(open.indexOf(t), 1);
  await closeLink(t.link);
}

let brokers: RunningBroker[] = [];
beforeAll(async () => {
  brokers = [await startBroker({ port: 0, open: true }), await startBroker({ port: 0, open: true })];
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => new Promise((r) => b.close(r))));
});
const url = (b: RunningBroker) => `mqtt://127.0.0.1:${b.port}`;

/** Node 1's link as the runtime sees it through the filter, and the events it got. */
function watched(goodbyeIsGone: boolean, urls: string[]) {
  const a = link({ self: 1, brokers: urls });
  const seen: LinkEvent[] = [];
  peerGoneFilter(a.link, true, undefined, goodbyeIsGone).onEvent((e) => seen.push(e));
  return { a, seen, gone: () => seen.filter((e) => e.kind === 'peer-gone' || e.kind === 'peer-goodbye') };
}

describe('an orderly goodbye as a peer-gone hint', () => {
  it('with goodbyeIsGone: node 2 closing its link is reported to node 1 once, as a goodbye (not a will)', async () => {
    const { a, gone } = watched(true, [url(brokers[0]!)]);
    const b = link({ self: 2, brokers: [url(brokers[0]!)] });
    await waitFor('a sees b online', () => a.link.connectedCount() === 1 && a.link.peerState(2) === 'online', 10_000);
    expect(gone()).toEqual([]);
    await bye(b);
    await waitFor('the goodbye reported as peer-gone', () => gone().length > 0, 10_000);
    expect(gone()).toEqual([{ kind: 'peer-goodbye', peer: 2 }]);
    expect(a.link.peerState(2)).toBe('offline');
  });

  it('without it (bully): no hint', async () => {
    const { a, gone } = watched(false, [url(brokers[0]!)]);
    const b = link({ self: 2, brokers: [url(brokers[0]!)] });
    await waitFor('a sees b online', () => a.link.peerState(2) === 'online', 10_000);
    await bye(b);
    await waitFor('a sees b offline', () => a.link.peerState(2) === 'offline', 10_000);
    expect(gone()).toEqual([]);
  });

  it('a goodbye said before node 1 connected (the retained store) is old news: no hint', async () => {
    const b = link({ self: 2, brokers: [url(brokers[0]!)] });
    await waitFor('b up', () => b.link.connectedCount() === 1, 10_000);
    await bye(b);
    const { a, gone } = watched(true, [url(brokers[0]!)]);
    await waitFor('a learned b offline from the retained store', () => a.link.connectedCount() === 1 && a.link.peerState(2) === 'offline', 10_000);
    expect(gone()).toEqual([]);
  });

  it('two brokers: one hint, once neither shows node 2 online', async () => {
    const urls = brokers.map(url);
    const { a, gone } = watched(true, urls);
    const b = link({ self: 2, brokers: urls });
    await waitFor('both brokers up, b online', () => a.link.connectedCount() === 2 && b.link.connectedCount() === 2 && a.link.peerState(2) === 'online', 10_000);
    await bye(b);
    await waitFor('a sees b offline on both brokers', () => a.link.peerState(2) === 'offline', 10_000);
    expect(gone()).toEqual([{ kind: 'peer-goodbye', peer: 2 }]);
    expect(a.link.stats.staleWills).toBe(0);
  });
});
