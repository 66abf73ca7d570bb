/**
 * A committed entry this build cannot decode — what an older node meets when a newer
 * leader proposes a command the older build does not know — stops the node with a
 * message that names the entry and says to upgrade; it is never skipped. Before, the
 * state machine consumed it as a no-op and counted it (`badCommands`): the old
 * replica went on without the write that the newer members applied, silently
 * different from them from that index on.
 *
 * No old build runs here: the newer leader is played by proposing the bytes of an
 * unknown command (op code 99) straight to the leader's engine, so every member —
 * the leader included, it runs this build too — is in the old node's place.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../../src/engine/contract.ts';
import { Status } from '../../../daemon/runtime/results.ts';
import { bytes, testCluster, text } from './helpers.ts';

/** CBOR [99, "x"]: a command array with an op code no build knows today. */
const UNKNOWN_OP = new Uint8Array([0x82, 0x18, 0x63, 0x61, 0x78]);

describe('a committed entry written by a newer quorumd', () => {
  it.each(['raft', 'paxos', 'zab'] as const)('%s: every member that meets it stops with a message naming it, before and after a restart, and never applies past it', (engine) => {
    const c = testCluster([1, 2, 3], { seed: 5, runtime: { engine } });
    expect(c.until(() => c.leader()?.state === 'running', 5000)).toBe(true);
    expect(c.call((cb) => c.leader()!.put('before', bytes('1'), {}, cb))?.status).toBe(Status.OK);
    expect(c.until(() => [...c.rt.values()].every((r) => text(r.stateMachine.get('before')?.value) === '1'), 2000)).toBe(true);
    const L = c.leader()!;
    const r = (L as unknown as { eng: Engine }).eng.propose(UNKNOWN_OP);
    expect(r.ok).toBe(true);
    const index = r.ok ? r.index : 0;
    // Every member meets the entry once it is committed (bounded: 5 s of virtual time).
    expect(c.until(() => new Set(c.fatals.map((f) => f.node)).size === 3, 5000)).toBe(true);
    for (const f of c.fatals) {
      expect(f.err.name).toBe('NewerEntryError');
      expect(f.err.message).toMatch(new RegExp(`^committed entry at index ${index} \\(term \\d+\\) cannot be applied by this build: command bytes: unknown op code 99\\. It was written by a newer quorumd`));
      expect(f.err.message).toContain('upgrade this node');
    }
    // Restarted (the test's onFatal crashes the process; the board starts it again), a
    // node replays the same entry and stops again: no start skips it.
    const first = c.fatals.length;
    c.world.run(3000);
    expect(c.fatals.length).toBeGreaterThan(first);
    for (const f of c.fatals) expect(f.err.name).toBe('NewerEntryError');
    // Nobody applied past it, and nobody counted it as a bad command.
    for (const rt of c.rt.values()) {
      expect(rt.stateMachine.appliedIndex).toBeLessThan(index);
      expect(rt.stateMachine.badCommands).toBe(0);
    }
  });
});
