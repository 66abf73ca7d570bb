import { describe, expect, it } from 'vitest';
import { ActivationListeners, type ActivationEvent } from '../../../daemon/runtime/activation.ts';

const ev = (active: boolean): ActivationEvent => ({ active, term: 3, token: 17, atMs: 1 });

describe('ActivationListeners (shared by the Raft and bully runtimes)', () => {
  it('tells every listener in order; a throwing one is logged and does not stop the rest', () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const l = new ActivationListeners('TestRuntime', (m) => errors.push(m));
    l.add((e) => seen.push(`a:${e.active}`));
    l.add(() => {
      throw new Error('hook broke');
    });
    l.add((e) => seen.push(`c:${e.token}`));
    l.emit(ev(true));
    expect(seen).toEqual(['a:true', 'c:17']);
    expect(errors).toEqual(['hook broke']);
  });

  it('unsubscribes, also from inside a call, and refuses what is not a function', () => {
    const seen: number[] = [];
    const l = new ActivationListeners('TestRuntime', () => {});
    const off1 = l.add(() => {
      seen.push(1);
      off1();
    });
    const off2 = l.add(() => seen.push(2));
    l.emit(ev(true));
    off2();
    l.emit(ev(false));
    expect(seen).toEqual([1, 2]);
    expect(() => l.add(42 as unknown as () => void)).toThrow(/TestRuntime\.onActivation: expected a function/);
  });
});
