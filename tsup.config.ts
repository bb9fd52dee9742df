import { defineConfig } from 'tsup';

/** One entry per subpath export; heavy libraries stay external (optional peers). */
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'testing/vitest/index': 'src/testing/vitest/index.ts',
    'fs/index': 'src/fs/index.ts',
    's3/index': 'src/s3/index.ts',
    'postgres/index': 'src/postgres/index.ts',
    'arrow/index': 'src/arrow/index.ts',
    'parquet/index': 'src/parquet/index.ts',
    'http/index': 'src/http/index.ts',
    'temporal/index': 'src/temporal/index.ts',
    'bullmq/index': 'src/bullmq/index.ts',
    'mysql/index': 'src/mysql/index.ts',
    'nats/index': 'src/nats/index.ts',
    'cli/main': 'src/cli/main.ts',
  },
  format: ['esm'],
  // TSUP_NO_DTS=1 skips declarations (the package test needs only the JavaScript).
  dts: !process.env.TSUP_NO_DTS,
  // No source maps: their sources would point at src/ files the package does not ship. The bundles are not
  // minified, so stacks point at readable lines of dist/.
  sourcemap: false,
  // Keep class and function names as written (`IngestError`, not `_IngestError`) in stacks and `inspect` output.
  keepNames: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'node20',
  external: [
    /^@aws-sdk\//,
    'pg',
    'pg-copy-streams',
    'kysely',
    'mysql2',
    /^mysql2\//,
    'apache-arrow',
    'parquet-wasm',
    'hyparquet-writer',
    /^@temporalio\//,
    /^@nats-io\//,
    'bullmq',
    'ioredis',
    'vitest',
    'fast-check',
  ],
});
