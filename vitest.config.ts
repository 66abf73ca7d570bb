import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A safety net, not a check: CPU-bound simulator tests get a third of a core when the
    // suite runs beside four busy loops on two cores; conditions have their own bounds.
    testTimeout: 180_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // bin/quorumd.js runs dist/: build it once before the suite when the sources changed.
    globalSetup: ['test/build-setup.ts'],
    setupFiles: ['test/helpers/setup.ts'],
  },
});
