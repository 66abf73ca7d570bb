import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // bin/quorumd.js runs dist/: build it once before the suite when the sources changed.
    globalSetup: ['test/build-setup.ts'],
    setupFiles: ['test/helpers/setup.ts'],
  },
});
