/**
 * Helpers shared by the etcd and ZooKeeper engine tests: engines in this process (one
 * client each, so that one can be cut off through its own TCP proxy), one timeline of
 * every node's activation events on one clock, and the safety checks over it:
 *
 *   - never two nodes active at the same instant;
 *   - the tokens of successive activations by different nodes strictly grow
 *     (a node may resume with its own token after its window closed and reopened);
 *   - the gap between one node's deactivation and the next node's activation.
 */
import { randomBytes } from 'node:crypto';
import type { ActivationEvent, ExternalEngine } from '../../daemon/engines/types.ts';
import type { ClientCallback, ClientResult } from '../../daemon/runtime/results.ts';

export const quietLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (f: Record<string, unknown>, m: string) => console.error('engine error:', m, f),
};

export interface Stamped extends ActivationEvent {
  node: string;
}

export class Timeline {
  readonly events: Stamped[] = [];
  private readonly offs: Array<() => void> = [];

  watch(node: string, e: ExternalEngine): void {
    this.offs.push(e.onActivation((ev) => this.events.push({ ...ev, node })));
  }

  /** Who is active now by the events (the last event per node). */
  activeNodes(): string[] {
    const last = new Map<string, Stamped>();
    for (const ev of this.events) last.set(ev.node, ev);
    return [...last.values()].filter((e) => e.active).map((e) => e.node);
  }

  /** Throws when two nodes were active at once, or tokens went backwards across nodes. */
  check(): void {
    let active: Stamped | undefined;
    let lastToken = 0;
    let lastNode = '';
    for (const ev of this.events) {
      if (ev.active) {
        if (active && active.node !== ev.node) {
          throw new Error(`two active leaders: ${active.node} (token ${active.token}, since ${active.atMs.toFixed(1)}) and ${ev.node} (token ${ev.token}) at ${ev.atMs.toFixed(1)}\n${this.dump()}`);
        }
        if (ev.node !== lastNode && ev.token <= lastToken) throw new Error(`token went backwards: ${ev.node} active with ${ev.token} after ${lastNode}'s ${lastToken}\n${this.dump()}`);
        if (ev.node === lastNode && ev.token < lastToken) throw new Error(`token went backwards on ${ev.node}: ${ev.token} < ${lastToken}`);
        active = ev;
        lastToken = ev.token;
        lastNode = ev.node;
      } else if (active?.node === ev.node) {
        active = undefined;
      }
    }
  }

  /** The gaps (ms) between a node's deactivation and the next activation of another node. */
  handoverGaps(): Array<{ from: string; to: string; gapMs: number; reason: string }> {
    const out: Array<{ from: string; to: string; gapMs: number; reason: string }> = [];
    let off: Stamped | undefined;
    for (const ev of this.events) {
      if (!ev.active) off = ev;
      else if (off && off.node !== ev.node) {
        out.push({ from: off.node, to: ev.node, gapMs: ev.atMs - off.atMs, reason: off.reason });
        off = undefined;
      } else off = undefined;
    }
    return out;
  }

  dump(): string {
    const t0 = this.events[0]?.atMs ?? 0;
    return this.events.map((e) => `  +${(e.atMs - t0).toFixed(1)} ms ${e.node} ${e.active ? 'ACTIVE' : 'inactive'} token=${e.token} (${e.reason})`).join('\n');
  }

  close(): void {
    for (const f of this.offs) f();
  }
}

/** A client call as a promise. */
export function call(f: (cb: ClientCallback) => void): Promise<ClientResult> {
  return new Promise((resolve) => f(resolve));
}

export const text = (s: string) => new TextEncoder().encode(s);
/** A fresh lock lease id (what the HTTP server makes for an acquire). */
export const lease = () => randomBytes(16).toString('base64url');
export const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b ?? new Uint8Array());
