import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Component tests start real servers; two cores run them best a few at a time.
    maxWorkers: 2,
  },
});
