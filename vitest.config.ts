import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    alias: {
      '@nucleus/ingestion/testing': new URL('./src/testing/index.ts', import.meta.url).pathname,
      '@nucleus/ingestion/temporal': new URL('./src/temporal/index.ts', import.meta.url).pathname,
      '@nucleus/ingestion': new URL('./src/index.ts', import.meta.url).pathname,
    },
    globalSetup: ['test/setup/global-postgres.ts', 'test/setup/global-s3.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most suites wait on PostgreSQL, S3 or child processes, not on this process's CPU.
    maxWorkers: 3,
    // s3rver needs the legacy OpenSSL provider for paginated listings (see CONVENTIONS.md).
    execArgv: ['--openssl-legacy-provider'],
  },
});
