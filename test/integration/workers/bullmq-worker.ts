/**
 * A BullMQ ingestion worker process for the scale-out tests and the `scale` benchmark: PostgreSQL source tables →
 * S3 staging → PostgreSQL sink, checkpoints and leases in PostgresKvStore, all shared with its sibling processes.
 *
 * Environment:
 *   REDIS_URL, QUEUE, QUEUE_PREFIX     the queue (random per test)
 *   DATABASE_URL, PG_SCHEMA            source tables, targets (`tables` map in UNITS_JSON), kv_entries, ledger
 *   UNITS_JSON                         { [unitId]: target 'schema.table' }
 *   S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, STAGING_PREFIX
 *   LOCK_MS                            BullMQ lock duration = lease TTL; STALLED_MS stalled-check interval
 *   WORKER_ID                          names the worker in leases and output
 *   PAUSE_UNIT                         on a fresh (not resumed) run of this unit, print `@@midway` in the middle of
 *                                      its import (first slice committed, 100 rows of the second one sent), then go on
 *                                      slowly (100 rows per SLOW_MS) — the test kills or stops the worker there
 *   SLICE_ROWS, CHUNK_ROWS             run policy; QUIET=1 prints only `@@ready`, `@@completed`, `@@failed`
 *
 * Output lines: `@@ready`, `@@active`, `@@read {unitId, slice}` (each source read), `@@lease {…}` (each lease
 * write, with its version), `@@event {…}`, `@@midway`, `@@completed {…}`, `@@failed {…}`, `@@closed`.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createIngestionWorker } from '../../../src/bullmq/index.js';
import type { KvStore, SourceEndpoint, StagingProvider, StagingSession } from '../../../src/index.js';
import { EndpointRegistry, ObjectStoreStagingProvider } from '../../../src/index.js';
import {
  PostgresKvStore,
  PostgresSink,
  PostgresSource,
  postgresSinkDescriptor,
  postgresSourceDescriptor,
} from '../../../src/postgres/index.js';
import { S3ObjectStore } from '../../../src/s3/index.js';

const env = process.env;
const need = (name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`bullmq-worker: ${name} is not set`);
  return v;
};
const quiet = env.QUIET === '1';
const say = (tag: string, obj?: unknown) => {
  if (quiet && !['@@ready', '@@completed', '@@failed', '@@closed', '@@midway'].includes(tag)) return;
  process.stdout.write(obj === undefined ? `${tag}\n` : `${tag} ${JSON.stringify(obj)}\n`);
};
const workerId = env.WORKER_ID ?? `w${process.pid}`;
const schema = need('PG_SCHEMA');
const units = JSON.parse(need('UNITS_JSON')) as Record<string, string>;
const pauseUnit = env.PAUSE_UNIT;
const slowMs = Number(env.SLOW_MS ?? 200);
const lockMs = Number(env.LOCK_MS ?? 3000);
const resumed = new Set<string>();
let paused = false;

function wrap<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, p) {
      if (typeof p === 'string' && Object.hasOwn(overrides, p)) return overrides[p];
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        res();
      },
      { once: true },
    );
  });

/** Staged reads of the pause unit from slice 1 on (slice 0 is committed by then): `@@midway`, then slowly. */
function wrapSession(session: StagingSession, unitId: string): StagingSession {
  return wrap(session, {
    reader: (opts?: Parameters<StagingSession['reader']>[0]) => {
      const r = session.reader(opts);
      if (unitId !== pauseUnit || opts?.slice === undefined || opts.slice < 1 || resumed.has(unitId)) return r;
      return {
        async *iterBatches(chunkSize: number) {
          // Pieces of 100 rows, SLOW_MS apart; `@@midway` once the first piece of slice 1 went to the sink.
          for await (const batch of r.iterBatches(chunkSize)) {
            for (let i = 0; i < batch.length; i += 100) {
              if (paused) await sleep(slowMs, opts.signal);
              yield batch.slice(i, i + 100);
              if (!paused) {
                paused = true;
                await sleep(100);
                say('@@midway', { unitId, slice: opts.slice, workerId });
              }
            }
          }
        },
      };
    },
  });
}

function wrapStaging(staging: StagingProvider): StagingProvider {
  return wrap(staging, {
    allocateSession: async (ctx: Parameters<StagingProvider['allocateSession']>[0]) =>
      wrapSession(await staging.allocateSession(ctx), ctx.unitId),
    openSession: async (ref: Parameters<StagingProvider['openSession']>[0]) =>
      wrapSession(await staging.openSession(ref), ref.unitId),
  });
}

function wrapKv(kv: KvStore): KvStore {
  return wrap(kv, {
    put: async (
      key: Parameters<KvStore['put']>[0],
      value: Parameters<KvStore['put']>[1],
      opts?: Parameters<KvStore['put']>[2],
    ) => {
      const entry = await kv.put(key, value, opts);
      if (key.key.endsWith('::lease')) {
        const v = value as { state: string; owner: string; runId: string; acquiredAt: string; expiresAt: string };
        say('@@lease', { key: key.key, version: entry.version, ...v, writtenAt: new Date().toISOString() });
      }
      return entry;
    },
  });
}

function countingSource(source: PostgresSource): SourceEndpoint<any> {
  return wrap(source, {
    read: (req: Parameters<PostgresSource['read']>[0], ctx: Parameters<PostgresSource['read']>[1]) => {
      say('@@read', { unitId: req.unitId, slice: req.slice?.index ?? null, runId: ctx.runId, workerId });
      return source.read(req, ctx);
    },
    // a planned slice staged as NDJSON is read through COPY (transcoded) rather than `read`: a read all the same
    readEncoded: (
      codec: string,
      req: Parameters<PostgresSource['readEncoded']>[1],
      ctx: Parameters<PostgresSource['readEncoded']>[2],
    ) => {
      const bytes = source.readEncoded(codec, req, ctx);
      if (bytes) say('@@read', { unitId: req.unitId, slice: req.slice?.index ?? null, runId: ctx.runId, workerId });
      return bytes;
    },
  });
}

async function main(): Promise<void> {
  const url = need('DATABASE_URL');
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  const kvPool = new pg.Pool({ connectionString: url, max: 2 });
  for (const p of [pool, kvPool]) p.on('error', () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: kvPool }) });
  const kv = new PostgresKvStore({ db, schema });
  await kv.migrate();
  const s3 = new S3Client({
    endpoint: need('S3_ENDPOINT'),
    region: env.S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: need('S3_ACCESS_KEY'), secretAccessKey: need('S3_SECRET_KEY') },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const staging = new ObjectStoreStagingProvider({
    store: new S3ObjectStore({ client: s3, bucket: need('S3_BUCKET') }),
    prefix: need('STAGING_PREFIX'),
  });
  const registry = new EndpointRegistry()
    .register(postgresSourceDescriptor, (config) => countingSource(new PostgresSource({ ...config, pool })))
    .register(postgresSinkDescriptor, (config) => new PostgresSink({ ...config, pool }));
  const redis = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');

  const ingestion = createIngestionWorker({
    queueName: need('QUEUE'),
    prefix: need('QUEUE_PREFIX'),
    connection: { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null },
    registry,
    staging: wrapStaging(staging),
    kv: wrapKv(kv),
    endpoints: {
      'pg-src': {
        endpointId: 'postgres',
        config: { units: Object.fromEntries(Object.keys(units).map((u) => [u, { cursorColumns: ['id'] }])) },
      },
      'pg-dst': {
        endpointId: 'postgres',
        config: { tables: units, ledgerTable: `${schema}._ledger`, importConcurrency: 1 },
      },
    },
    defaultSinkId: 'pg-dst',
    workerId,
    lockDurationMs: lockMs,
    stalledIntervalMs: Number(env.STALLED_MS ?? lockMs / 2),
    policy: {
      sliceMaxRows: Number(env.SLICE_ROWS ?? 1000),
      chunkSize: Number(env.CHUNK_ROWS ?? 250),
      exportConcurrency: 2,
      retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 500 },
      // the scale-out test kills a worker mid-import and expects the resumer to import from a sealed session without
      // reading the source: the phases stay apart (overlapped kills: crash-points-overlap, crash-random-overlap)
      overlap: env.OVERLAP === '1',
    },
    progressIntervalMs: 200,
    handleSignals: ['SIGTERM'],
    onEvent: (e) => {
      if (e.type === 'run.resumed') resumed.add(e.unitId);
      if (['run.started', 'run.resumed', 'run.failed', 'checkpoint.committed'].includes(e.type)) {
        say('@@event', { ...e, workerId });
      }
    },
  });
  const w = ingestion.worker;
  w.on('active', (job) => say('@@active', { jobId: job.id, unitId: job.data.unitId, workerId }));
  w.on('completed', (job, result) => say('@@completed', { jobId: job.id, unitId: job.data.unitId, result, workerId }));
  w.on('failed', (job, err) =>
    say('@@failed', { jobId: job?.id, unitId: job?.data.unitId, message: err.message, name: err.name, workerId }),
  );
  w.on('closed', () => {
    void Promise.allSettled([db.destroy(), pool.end()]).then(() => {
      s3.destroy();
      say('@@closed', { workerId });
      process.exit(0);
    });
  });
  await w.waitUntilReady();
  say('@@ready', { workerId, pid: process.pid });
}

main().catch((err) => {
  say('@@fatal', { message: String(err?.stack ?? err) });
  process.exit(1);
});
