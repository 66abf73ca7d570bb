/**
 * answerOnce (the external engines' request timeout): after a stall longer than the
 * timeout, the service's answer that arrived meanwhile is taken, not a timeout — Node
 * runs due timers before it reads sockets, so the timeout waits for that loop turn's
 * reads. Without a stall the timeout still answers, once, and a late answer is dropped.
 */
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { answerOnce } from '../../daemon/engines/common.ts';
import type { ClientResult } from '../../daemon/runtime/results.ts';
import { Staller } from '../helpers/stall.ts';
import { until } from './servers.ts';

let staller: Staller;
beforeAll(async () => {
  staller = await new Staller().start();
});
afterAll(async () => {
  await staller.stop();
});

it('an answer that arrived during a stall past the timeout wins over the timeout', async () => {
  const got: ClientResult[] = [];
  // Started from a socket callback (the poll phase), where a request's work runs.
  const kick = createSocket('udp4');
  await new Promise<void>((r) => kick.bind(0, '127.0.0.1', () => r()));
  kick.once('message', () => {
    const answer = answerOnce((r) => got.push(r), 100, () => ({ status: 503, error: 'timeout' }));
    staller.socket.once('message', () => answer({ status: 200 }));
    staller.stallWhileAnswerArrives(400);
  });
  kick.send('go', kick.address().port, '127.0.0.1');
  try {
    await until('an answer', () => got.length > 0, 20_000, 10);
    expect(got).toEqual([{ status: 200 }]);
  } finally {
    kick.close();
  }
});

it('without an answer the timeout answers, once; a later answer is dropped', async () => {
  const got: ClientResult[] = [];
  const answer = answerOnce((r) => got.push(r), 50, () => ({ status: 503, error: 'timeout' }));
  await until('the timeout', () => got.length > 0, 20_000, 10);
  answer({ status: 200 });
  expect(got).toEqual([{ status: 503, error: 'timeout' }]);
});
