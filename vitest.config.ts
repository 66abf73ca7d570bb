import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A safety net, not a check: CPU-bound simulator tests get a third of a core when the
    // suite runs beside four busy loops on two cores; conditions have their own bounds.
    testTimeout: 180_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // vitest's default is one worker less than the cores, which is one worker on a
    // 2-core machine (CI's): the files then ran one after another while most of them
    // wait on real processes, brokers and disks (the suite kept ~1 core busy). One per
    // core, at least two. Each worker draws test ports from its own range
    // (test/helpers/ports.ts).
    maxWorkers: Math.max(2, availableParallelism()),
    // bin/quorumd.js runs dist/: build it once before the suite when the sources changed.
    globalSetup: ['test/build-setup.ts'],
    setupFiles: ['test/helpers/setup.ts'],
  },
});
