import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Examples import the package by name: the root and every subpath map to src/ (`…/x` → src/x/index.ts),
    // exactly like examples/tsconfig.json.
    alias: [
      { find: /^@nucleus\/ingestion$/, replacement: new URL('./src/index.ts', import.meta.url).pathname },
      {
        find: /^@nucleus\/ingestion\/(.+)$/,
        replacement: `${new URL('./src/', import.meta.url).pathname}$1/index.ts`,
      },
    ],
    globalSetup: ['test/setup/global-postgres.ts', 'test/setup/global-s3.ts'],
    setupFiles: ['test/setup/app-name.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most suites wait on PostgreSQL, S3 or child processes, not on this process's CPU.
    maxWorkers: 3,
    // s3rver needs the legacy OpenSSL provider for paginated listings (see CONVENTIONS.md).
    execArgv: ['--openssl-legacy-provider'],
  },
});
