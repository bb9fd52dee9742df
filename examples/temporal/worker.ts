/**
 * A Temporal worker running the ingestion activities: PostgreSQL → Parquet files in a local directory, staged
 * on the filesystem, checkpoints and leases in PostgreSQL (`kv_entries`).
 *
 *   DATABASE_URL=postgres://… TEMPORAL_ADDRESS=localhost:7233 npx tsx examples/temporal/worker.ts
 *
 * Start a run with the Temporal CLI:
 *   temporal workflow start --task-queue ingestion --type ingestionRunWorkflow \
 *     --input '{"endpointId":"warehouse","unitId":"public.orders"}'
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  EndpointRegistry,
  ObjectStoreSink,
  ObjectStoreStagingProvider,
  objectStoreSinkDescriptor,
} from '@nucleus/ingestion';
import { FileSystemObjectStore } from '@nucleus/ingestion/fs';
import { PostgresKvStore, PostgresSource, postgresSourceDescriptor } from '@nucleus/ingestion/postgres';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createActivities } from './activities.js';

export async function runWorker(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
  const pool = new pg.Pool({ connectionString: databaseUrl });
  const kv = new PostgresKvStore({ db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) });
  await kv.migrate();

  // Clients are injected: the source shares the worker's pool, the sink writes through an ObjectStore.
  const lake = new FileSystemObjectStore({ root: process.env.LAKE_DIR ?? './lake' });
  const registry = new EndpointRegistry()
    .register(postgresSourceDescriptor, (config) => new PostgresSource({ ...config, pool }))
    .register(objectStoreSinkDescriptor, (config) => new ObjectStoreSink({ ...config, store: lake }));

  const activities = createActivities({
    registry,
    staging: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root: process.env.STAGING_DIR ?? './staging' }),
    }),
    kv,
    endpoints: {
      warehouse: {
        endpointId: 'postgres',
        config: { units: { 'public.orders': { cursorColumns: ['updated_at', 'id'] } } },
      },
      lake: { endpointId: 'object-store', config: { format: 'parquet', prefix: 'raw' } },
    },
    defaultSinkId: 'lake',
    policy: { sliceMaxRows: 250_000, leaseTtlMs: 60_000 },
  });

  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: 'ingestion',
      activities,
      workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
    });
    await worker.run(); // until SIGINT/SIGTERM: running activities are cancelled, their runs stay resumable
  } finally {
    await connection.close();
    await pool.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runWorker().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
