import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addons and their worker threads: one process per test file.
    pool: 'forks',
    testTimeout: 120_000,
  },
});
