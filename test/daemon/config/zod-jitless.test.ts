/**
 * The config is parsed without zod's JIT (daemon/config/zod.ts): loading the config
 * modules and parsing a config compiles no code from strings. zod's JIT would compile
 * one parser per object schema with `new Function` (the file, and each absent section
 * for its defaults), each used once: start-up CPU and heap of every node and CLI call.
 */
import { describe, expect, it } from 'vitest';

describe('config parsing without zod JIT', () => {
  it('importing the config modules and parsing a config constructs no Function', async () => {
    const Real = globalThis.Function;
    let built = 0;
    globalThis.Function = new Proxy(Real, {
      construct(target, args) {
        built++;
        return Reflect.construct(target, args);
      },
    });
    try {
      const { parseConfigText } = await import('../../../daemon/config/load.ts');
      const { good } = await import('./helpers.ts');
      const cfg = parseConfigText(`${good}raft: { heartbeatMs: 50 }\n`, 'x.yaml');
      expect(cfg.raft.heartbeatMs).toBe(50); // it did parse, through the object schemas
      // An invalid file still gets zod's messages without the JIT.
      expect(() => parseConfigText(good.replace('name: a\n', 'name: 7\n'), 'y.yaml')).toThrow(/node\.name/);
    } finally {
      globalThis.Function = Real;
    }
    expect(built).toBe(0);
  });
});
