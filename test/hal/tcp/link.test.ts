/**
 * The direct TCP link on 127.0.0.1: delivery between nodes, reconnect after a peer
 * restarts, and hostile input on the listening port (garbage, oversize frames,
 * slowloris, a wrong key, a replayed handshake, too many half-open connections).
 * Every wait is a bounded poll.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpLink, type TcpLinkOptions } from '../../../hal/tcp/link.ts';
import type { LinkEvent } from '../../../hal/interfaces.ts';
import { FrameOpener, FrameSealer, Sender } from '../../../src/wire/auth.ts';
import { MsgType } from '../../../src/wire/messages.ts';
import { SilentHolder, waitFor } from '../mqtt/helpers.ts';
import { freeBasePort } from '../../helpers/ports.ts';

const CLUSTER = 7;
const KEY = new Uint8Array(32).fill(0x5a);
const OTHER_KEY = new Uint8Array(32).fill(0x33);

interface T {
  link: TcpLink;
  frames: Uint8Array[];
  events: LinkEvent[];
}
const open: TcpLink[] = [];
const raws: net.Socket[] = [];
const children: ChildProcess[] = [];
const holders: SilentHolder[] = [];
afterEach(async () => {
  for (const h of holders.splice(0)) h.stop();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of raws.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((l) => new Promise<void>((r) => l.close(() => r()))));
});

function mk(self: number, base: number, ids: number[], extra: Partial<TcpLinkOptions> = {}): T {
  const link = new TcpLink({
    cluster: CLUSTER,
    self,
    keyring: { current: KEY },
    listen: { host: '127.0.0.1', port: base + self },
    peers: ids.filter((i) => i !== self).map((id) => ({ id, host: '127.0.0.1', port: base + id })),
    reconnect: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  open.push(link);
  const t: T = { link, frames: [], events: [] };
  link.onFrame((f) => t.frames.push(f));
  link.onEvent((e) => t.events.push(e));
  return t;
}

/** A raw client on node `self`'s port; collects what the listener sends. */
async function raw(port: number): Promise<{ sock: net.Socket; got: () => Buffer; closed: () => boolean }> {
  const sock = net.createConnection({ host: '127.0.0.1', port });
  raws.push(sock);
  let got = Buffer.alloc(0);
  let closed = false;
  sock.on('data', (d) => (got = Buffer.concat([got, d])));
  sock.on('error', () => {});
  sock.on('close', () => (closed = true));
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  return { sock, got: () => got, closed: () => closed };
}

/** The handshake as docs/config.md (tcp:) and hal/tcp/link.ts specify it, computed independently here. */
function hello(challenge: Buffer, o: { cluster?: number; from: number; to: number; key?: Uint8Array; session?: Buffer }): Buffer {
  const b = Buffer.alloc(32);
  b.write('QDT1', 0, 'latin1');
  b.writeUInt16BE(o.cluster ?? CLUSTER, 4);
  b.writeUInt8(o.from, 6);
  b.writeUInt8(o.to, 7);
  (o.session ?? Buffer.from('0102030405060708', 'hex')).copy(b, 8);
  createHmac('sha256', o.key ?? KEY).update('quorumd-tcp-hello\u0000').update(challenge).update(b.subarray(4, 16)).digest().copy(b, 16, 0, 16);
  return b;
}

function framed(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  b.set(payload, 4);
  return b;
}

describe('TcpLink', () => {
  it('delivers authenticated frames between three nodes, each way', async () => {
    const base = await freeBasePort(3);
    const ids = [1, 2, 3];
    const [a, b, c] = ids.map((i) => mk(i, base, ids));
    await waitFor('all connected', () => [a, b, c].every((t) => t!.link.connectedPeers().length === 2));
    expect(a!.events[0]).toEqual({ kind: 'up' });
    const sealer = new FrameSealer({ cluster: CLUSTER, keyring: { current: KEY }, sender: new Sender(1) });
    const f = sealer.seal({ type: MsgType.Heartbeat, from: 1, to: 2, term: 5, commit: undefined, ctx: 0 }).frame;
    a!.link.send(2, f);
    c!.link.send(1, new Uint8Array([9, 9]));
    b!.link.send(3, new Uint8Array(60_000).fill(7)); // one frame across many TCP segments
    await waitFor('frames', () => b!.frames.length === 1 && a!.frames.length === 1 && c!.frames.length === 1);
    const r = new FrameOpener({ cluster: CLUSTER, keyring: { current: KEY }, self: 2 }).open(b!.frames[0]!);
    expect(r.ok && r.msg.type === MsgType.Heartbeat && r.msg.term === 5).toBe(true);
    expect([...a!.frames[0]!]).toEqual([9, 9]);
    expect(c!.frames[0]!.length).toBe(60_000);
    expect(c!.frames[0]!.every((x) => x === 7)).toBe(true);
    // Many small frames in a row arrive whole and in order.
    for (let i = 0; i < 200; i++) a!.link.send(3, new Uint8Array([i & 0xff, 1, 2]));
    await waitFor('200 frames', () => c!.frames.length === 201);
    expect(c!.frames.slice(1).map((x) => x[0])).toEqual(Array.from({ length: 200 }, (_, i) => i & 0xff));
  });

  it('drops and counts frames for an unknown node or a peer that is down; throws for caller mistakes', async () => {
    const base = await freeBasePort(2);
    const a = mk(1, base, [1, 2]);
    a.link.send(9, new Uint8Array([1]));
    expect(a.link.stats.misaddressed).toBe(1);
    a.link.send(2, new Uint8Array([1])); // node 2 not started
    expect(a.link.stats.droppedDown).toBe(1);
    expect(() => a.link.send(0, new Uint8Array([1]))).toThrow(/node id/);
    expect(() => a.link.send(2, new Uint8Array(a.link.maxFrame + 1))).toThrow(/maxFrame/);
    expect(() => new TcpLink({ cluster: CLUSTER, self: 1, keyring: { current: KEY }, listen: { host: '127.0.0.1', port: 1 }, peers: [{ id: 1, host: 'x', port: 2 }] })).toThrow(/this node/);
    expect(() => new TcpLink({ cluster: CLUSTER, self: 1, keyring: { current: KEY }, listen: { host: '127.0.0.1', port: 70000 }, peers: [{ id: 2, host: 'x', port: 2 }] })).toThrow(/tcp\.listen\.port/);
  });

  it('reconnects to a peer that restarts, and redials at once when the peer comes back with a new session', async () => {
    const base = await freeBasePort(2);
    const a = mk(1, base, [1, 2]);
    let b = mk(2, base, [1, 2]);
    await waitFor('connected', () => a.link.connectedPeers().length === 1 && b.link.connectedPeers().length === 1);
    await new Promise<void>((r) => b.link.close(() => r()));
    await waitFor('a sees b down', () => a.events.some((e) => e.kind === 'down'));
    b = mk(2, base, [1, 2]);
    await waitFor('reconnected', () => a.link.connectedPeers().length === 1 && b.link.connectedPeers().length === 1);
    await waitFor('a redialed b after its restart', () => a.link.stats.connects >= 2);
    let n = 0;
    await waitFor('frame after restart', () => {
      a.link.send(2, new Uint8Array([++n & 0xff]));
      return b.frames.length > 0;
    });
    expect(a.events.filter((e) => e.kind === 'up').length).toBe(2);
  });

  it('after a restart, keeps a connection that already reached the new session (crossing dials) and redials one that reached another', async () => {
    const base = await freeBasePort(2);
    const a = mk(1, base, [1, 2]);
    const b = mk(2, base, [1, 2]);
    await waitFor('connected', () => a.link.sendsTo(2) && b.link.sendsTo(1));
    await new Promise<void>((r) => b.link.close(() => r()));
    await waitFor('a sees b down', () => a.events.some((e) => e.kind === 'down'));
    // A restarted node 2 by hand, so that the order is fixed: a's redial reaches it first,
    // its challenge naming session `announced`; then its own hello (session `session`) reaches a.
    // First the crossing dials of one restart; then a restart whose challenge named another
    // session (as a connection into a board that lost power would have).
    const S1 = Buffer.from('0102030405060708', 'hex');
    const S2 = Buffer.from('1112131415161718', 'hex');
    for (const [announced, session, kept] of [[S1, S1, true], [Buffer.from('a1a2a3a4a5a6a7a8', 'hex'), S2, false]] as const) {
      const accepted: net.Socket[] = [];
      const server = net.createServer((s) => {
        accepted.push(s);
        raws.push(s);
        s.on('error', () => {});
        s.write(Buffer.concat([Buffer.from('QDT1', 'latin1'), announced, Buffer.alloc(8, 0xee)]));
      });
      await new Promise<void>((r) => server.listen(base + 2, '127.0.0.1', () => r()));
      try {
        await waitFor('a dialed the restarted node 2', () => a.link.sendsTo(2) && accepted.length === 1);
        const dials = a.link.stats.dials;
        const ups = a.events.filter((e) => e.kind === 'up').length;
        const restarts = a.link.stats.peerRestarts;
        const r = await raw(base + 1);
        await waitFor('challenge', () => r.got().length >= 20);
        r.sock.write(hello(r.got().subarray(4, 20), { from: 2, to: 1, session }));
        await waitFor('a saw the new session', () => a.link.stats.peerRestarts === restarts + 1);
        if (kept) {
          // A frame sent after the hello still arrives on the first connection (a redial would have closed it).
          a.link.send(2, new Uint8Array([42]));
          let bytes = Buffer.alloc(0);
          accepted[0]!.on('data', (d: Buffer) => (bytes = Buffer.concat([bytes, d])));
          await waitFor('the frame on the kept connection', () => bytes.includes(Buffer.from([0, 0, 0, 1, 42])));
          expect(a.link.stats.dials).toBe(dials);
          expect(accepted.length).toBe(1);
          expect(a.events.filter((e) => e.kind === 'up').length).toBe(ups);
        } else {
          await waitFor('a redialed', () => accepted.length === 2 && a.link.sendsTo(2));
          expect(a.link.stats.dials).toBe(dials + 1);
        }
        r.sock.destroy();
        await waitFor('a sees the hand-made node 2 go', () => !a.link.reaches(2) || a.link.sendsTo(2));
      } finally {
        for (const s of accepted) s.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      }
      await waitFor('a sees node 2 down again', () => !a.link.sendsTo(2));
    }
  });

  describe('reaches(): whether a connection with the peer is open (the will of a peer counts only when none is)', () => {
    /** Node `self` in a process of its own (test/hal/tcp/peer-process.ts); resolves once it is connected to every other id. */
    async function peerProcess(self: number, base: number, ids: number[]): Promise<ChildProcess> {
      const arg = JSON.stringify({ cluster: CLUSTER, self, key: Buffer.from(KEY).toString('hex'), base, ids });
      const c = spawnTied(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'peer-process.ts'), arg], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(c);
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const want = `connected ${ids.filter((i) => i !== self).join(',')}\n`;
      await waitFor(`node ${self}'s process connected`, () => out.includes(want), 30_000);
      return c;
    }

    it('is true while a connection is open, false at once when the peer process is SIGKILLed, true again after it is back', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2]);
      expect(a.link.reaches(2)).toBe(false);
      let b = await peerProcess(2, base, [1, 2]);
      await waitFor('a reaches 2', () => a.link.reaches(2) && a.link.sendsTo(2));
      expect(a.link.reaches(3)).toBe(false); // not a peer
      const lost0 = a.events.filter((e) => e.kind === 'session-lost').length;
      b.kill('SIGKILL');
      // The kernel closed b's sockets: no timeout involved (the election timeout is 1 s and more).
      const ms = await waitFor('a no longer reaches 2', () => !a.link.reaches(2), 5000, 1);
      expect(ms).toBeLessThan(2000);
      expect(a.link.sendsTo(2)).toBe(false);
      // Each of the two connections (dialed and accepted) ended with a session-lost naming the peer.
      const lost = a.events.slice(lost0).filter((e) => e.kind === 'session-lost');
      expect(lost.length).toBe(2);
      expect(lost.every((e) => e.kind === 'session-lost' && e.peer === 2)).toBe(true);
      b = await peerProcess(2, base, [1, 2]);
      await waitFor('a reaches 2 again (redialed)', () => a.link.reaches(2) && a.link.sendsTo(2));
      b.kill('SIGKILL');
      await waitFor('and not after the second kill', () => !a.link.reaches(2));
    }, 90_000);

    it('counts an accepted connection alone; a partition that sends nothing leaves the peer reached (no guess)', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2]);
      // A node 2 that only dials (its handshake by hand): a's outgoing connection stays down.
      const r = await raw(base + 1);
      await waitFor('challenge', () => r.got().length >= 20);
      r.sock.write(hello(r.got().subarray(4, 20), { from: 2, to: 1 }));
      await waitFor('a reaches 2 through the accepted connection', () => a.link.reaches(2));
      expect(a.link.sendsTo(2)).toBe(false);
      // Silence is not a close: still reached after a while with nothing on the wire.
      await new Promise((res) => setTimeout(res, 300));
      expect(a.link.reaches(2)).toBe(true);
      r.sock.end(); // FIN
      await waitFor('FIN: no longer reached', () => !a.link.reaches(2));
      expect(a.events.some((e) => e.kind === 'session-lost' && e.peer === 2)).toBe(true);
    });

    it('our own close of a connection says session-lost too (the peer may act on our will next); close() of the link says nothing', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2]);
      const b = mk(2, base, [1, 2]);
      await waitFor('connected', () => a.link.reaches(2) && b.link.reaches(1) && a.link.sendsTo(2) && b.link.sendsTo(1));
      // b announces an oversize frame on its connection to a: a closes it.
      const aLost = a.events.filter((e) => e.kind === 'session-lost').length;
      const r = await raw(base + 1);
      await waitFor('challenge', () => r.got().length >= 20);
      r.sock.write(hello(r.got().subarray(4, 20), { from: 2, to: 1 })); // replaces b's accepted connection (a new session of 2)
      await waitFor('replaced connection reported', () => a.events.slice(aLost).some((e) => e.kind === 'session-lost' && e.peer === 2 && /replaced/.test(e.reason)));
      const big = Buffer.alloc(4);
      big.writeUInt32BE(a.link.maxFrame + 1, 0);
      r.sock.write(big);
      await waitFor('a closed it and said so', () => a.events.slice(aLost).some((e) => e.kind === 'session-lost' && e.peer === 2 && /bytes announced/.test(e.reason)));
      // b's own connections settle again (a redialed it on the new session; b redials a).
      await waitFor('connected again', () => a.link.reaches(2) && b.link.reaches(1) && a.link.sendsTo(2) && b.link.sendsTo(1));
      const bEvents = b.events.length;
      const aEvents = a.events.length;
      await new Promise<void>((res) => a.link.close(() => res()));
      expect(a.events.length).toBe(aEvents);
      expect(a.link.reaches(2)).toBe(false);
      await waitFor('b sees a gone', () => !b.link.reaches(1));
      expect(b.events.slice(bEvents).some((e) => e.kind === 'session-lost' && e.peer === 1)).toBe(true);
    });
  });

  describe('hostile input on the listening port', () => {
    it('closes a connection that sends garbage, and keeps serving its peers', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2]);
      const b = mk(2, base, [1, 2]);
      const g = await raw(base + 1);
      g.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor('garbage connection closed', () => g.closed());
      expect(a.link.stats.badHello).toBe(1);
      await waitFor('connected', () => b.link.connectedPeers().length === 1);
      b.link.send(1, new Uint8Array([5]));
      await waitFor('frame', () => a.frames.length === 1);
    });

    it('refuses a wrong key (a node of another cluster key) and a handshake for another challenge', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2]);
      const b = mk(2, base, [1, 2], { keyring: { current: OTHER_KEY } });
      await waitFor('b dialed and was refused', () => a.link.stats.authFailures >= 1);
      b.link.send(1, new Uint8Array([1])); // b thinks it is connected until the close arrives: dropped or sent into a closed socket
      // A recorded handshake does not open a second connection: its tag is for another challenge.
      const r = await raw(base + 1);
      await waitFor('challenge', () => r.got().length >= 20);
      r.sock.write(hello(Buffer.alloc(16, 1), { from: 2, to: 1 }));
      await waitFor('replayed handshake closed', () => r.closed());
      expect(a.link.stats.authFailures).toBeGreaterThanOrEqual(2);
      expect(a.frames.length).toBe(0);
      // Right key, wrong addressee / cluster / unknown node: garbage.
      for (const h of [{ from: 2, to: 3 }, { from: 2, to: 1, cluster: 8 }, { from: 9, to: 1 }]) {
        const s = await raw(base + 1);
        await waitFor('challenge', () => s.got().length >= 20);
        s.sock.write(hello(s.got().subarray(4, 20), h));
        await waitFor('closed', () => s.closed());
      }
      expect(a.link.stats.badHello).toBe(3);
    });

    it('accepts a correct handshake with the previous key (rotation), then closes at an oversize frame header', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2], { keyring: { current: OTHER_KEY, previous: KEY }, maxFrame: 1024 });
      const r = await raw(base + 1);
      await waitFor('challenge', () => r.got().length >= 20);
      expect(r.got().subarray(0, 4).toString('latin1')).toBe('QDT1');
      r.sock.write(Buffer.concat([hello(r.got().subarray(4, 20), { from: 2, to: 1 }), framed(new Uint8Array([4, 2]))]));
      await waitFor('frame delivered', () => a.frames.length === 1);
      expect([...a.frames[0]!]).toEqual([4, 2]);
      const big = Buffer.alloc(4);
      big.writeUInt32BE(1025, 0);
      r.sock.write(big);
      await waitFor('oversize closes', () => r.closed());
      expect(a.link.stats.tooLarge).toBe(1);
      // A zero length is no frame either.
      const z = await raw(base + 1);
      await waitFor('challenge', () => z.got().length >= 20);
      z.sock.write(Buffer.concat([hello(z.got().subarray(4, 20), { from: 2, to: 1 }), Buffer.alloc(4)]));
      await waitFor('zero length closes', () => z.closed());
      expect(a.link.stats.tooLarge).toBe(2);
      expect(a.frames.length).toBe(1);
    });

    it('closes a slow handshake (slowloris); beyond maxPending the oldest in handshake is closed for the newcomer', async () => {
      const base = await freeBasePort(2);
      const a = mk(1, base, [1, 2], { helloTimeoutMs: 300, maxPending: 3 });
      const slow = await raw(base + 1);
      slow.sock.write('QD'); // a valid start, then nothing
      const more: Awaited<ReturnType<typeof raw>>[] = [];
      for (let i = 0; i < 4; i++) more.push(await raw(base + 1));
      await waitFor('the two oldest closed for newcomers', () => slow.closed() && more[0]!.closed());
      expect(a.link.stats.evictedPending).toBe(2);
      await waitFor('slow handshakes timed out', () => more.every((m) => m.closed()), 10_000);
      expect(a.link.stats.helloTimeouts).toBe(3);
      // The node still accepts a real peer afterwards.
      const b = mk(2, base, [1, 2]);
      await waitFor('peer connects', () => b.link.connectedPeers().length === 1);
      b.link.send(1, new Uint8Array([1]));
      await waitFor('frame', () => a.frames.length === 1);
    });

    it('a restarted peer gets in while silent connections, reopened as they close, hold every handshake slot', async () => {
      const base = await freeBasePort(2);
      // Default maxPending (16); a hello timeout longer than the wait below, so that no
      // slot frees up by itself while the peer dials.
      const a = mk(1, base, [1, 2], { helloTimeoutMs: 20_000 });
      await new Promise<void>((r) => a.link.whenListening(r));
      const h = new SilentHolder(base + 1, 16);
      holders.push(h);
      await waitFor('16 silent connections', () => h.connected >= 16);
      const b = mk(2, base, [1, 2]);
      await waitFor('a frame of the peer delivered', () => {
        if (a.frames.length === 0 && b.link.sendsTo(1)) b.link.send(1, new Uint8Array([9]));
        return a.frames.length > 0;
      });
      expect(a.link.reaches(2)).toBe(true);
      expect(a.link.stats.evictedPending).toBeGreaterThanOrEqual(1);
      expect(h.reopens).toBeGreaterThanOrEqual(1);
    });

    it('never closes an authenticated connection, nor a handshake from another address, for a holder\'s newcomers', async () => {
      const base = await freeBasePort(3);
      const a = mk(1, base, [1, 2, 3], { helloTimeoutMs: 20_000, maxPending: 4 });
      const c = mk(3, base, [1, 2, 3]);
      await waitFor('node 3 reaches node 1', () => a.link.reaches(3));
      // A handshake in progress from 127.0.0.1: the challenge read, no answer yet.
      const peer = await raw(base + 1);
      await waitFor('challenge', () => peer.got().length >= 20);
      // Silent connections from 127.0.0.2, more than the slots, reopened as they close.
      const h = new SilentHolder(base + 1, 4, { localAddress: '127.0.0.2' });
      holders.push(h);
      await waitFor('200 of them closed for newer ones', () => a.link.stats.evictedPending >= 200);
      h.stop();
      expect(peer.closed()).toBe(false);
      peer.sock.write(Buffer.concat([hello(peer.got().subarray(4, 20), { from: 2, to: 1 }), framed(new Uint8Array([2]))]));
      await waitFor('the handshake completes and its frame arrives', () => a.frames.length === 1);
      expect(a.link.reaches(2)).toBe(true);
      expect(a.link.reaches(3)).toBe(true);
      expect(a.events.filter((e) => e.kind === 'session-lost')).toEqual([]);
      c.link.send(1, new Uint8Array([3]));
      await waitFor('node 3 still delivers', () => a.frames.length === 2);
    });
  });
});
