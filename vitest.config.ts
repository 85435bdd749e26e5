import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time: most of the suite waits on compilers, sockets and namespaces, and
    // one at a time (the default on 2 cores) takes over 15 minutes.
    maxWorkers: 2,
  },
});
