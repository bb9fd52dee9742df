/**
 * Crash worker: one `runUnit` of a PostgreSQL table of sequence numbers → object-store staging (filesystem or S3)
 * → PostgreSQL sink, with PostgresKvStore checkpoints. It kills itself with SIGKILL (or stops itself with SIGSTOP)
 * at a named crash point, or after a random delay, so the reliability suites can prove what survives.
 *
 * Run with `node --openssl-legacy-provider --import tsx test/reliability/workers/crash-worker.ts`.
 *
 * Environment:
 *   DATABASE_URL, PG_SCHEMA           where the source table `src`, target `dst`, ledger and `kv_entries` live
 *   DISPOSITION                       'append' | 'merge'
 *   STAGING                           'fs' (FS_ROOT) | 's3' (S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY)
 *   STAGING_PREFIX                    key prefix of the staging sessions (default 'ingestion')
 *   CODEC                             staging codec: 'ndjson' (default) | 'pg-copy' (the PostgreSQL pass-through) | 'arrow'
 *   CRASH_AT / CRASH_N                SIGKILL at the N-th (default 1st) hit of a named point (see crash-worker-points.ts)
 *   PAUSE_AT / PAUSE_N                SIGSTOP at the N-th hit of a named point (the parent sends SIGCONT)
 *   CRASH_AFTER_MS                    SIGKILL after this many milliseconds, wherever the run is
 *   WAIT_GO=1                         print `@@ready` once connected, then wait for a line on stdin before runUnit
 *   LEASE_TTL_MS, SLICE_MAX_ROWS, CHUNK_SIZE, EXPORT_CONCURRENCY, WORKER_ID
 *   OVERLAP=1                         overlap export and import (`policy.overlap`, ADR 0018); else the phases stay apart,
 *                                     as the named points `state-exported` and `sealed`-before-import assume
 *
 * Every reached point is printed as `@@point <name> <n>`; the outcome as one `@@result {json}` line. Exit codes:
 * 0 committed, 20 lease_held, 21 lease_lost, 22 other retryable IngestError, 23 non-retryable IngestError, 1 other.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import type {
  ImportSlice,
  IngestionEvent,
  KvStore,
  RecordReader,
  StagingProvider,
  StagingSession,
} from '../../../src/index.js';
import { checkpointKey, IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { isLiveSlice } from '../../../src/pipeline/live-slice.js';
import { PostgresKvStore, PostgresSink, PostgresSource, pgCopyCodec } from '../../../src/postgres/index.js';
import { withReader } from '../../helpers/import-slice.js';

const env = process.env;
const schema = need('PG_SCHEMA');
const disposition = (env.DISPOSITION ?? 'append') as 'append' | 'merge';
const crashAt = env.CRASH_AT;
const crashN = Number(env.CRASH_N ?? 1);
const pauseAt = env.PAUSE_AT;
const pauseN = Number(env.PAUSE_N ?? 1);
const crashRows = Number(env.CRASH_ROWS ?? 500);
const hits = new Map<string, number>();

function need(name: string): string {
  const v = env[name];
  if (!v) throw new Error(`crash-worker: ${name} is not set`);
  return v;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A named point was reached: print it, then crash or pause when the environment asks for it. */
function hit(point: string): void {
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  say(`@@point ${point} ${n}`);
  if (crashAt === point && n === crashN) {
    say(`@@crash ${point}`);
    process.kill(process.pid, 'SIGKILL');
  }
  if (pauseAt === point && n === pauseN) {
    say(`@@paused ${point}`);
    process.kill(process.pid, 'SIGSTOP');
    say(`@@continued ${point}`);
  }
}

/** Forward every property of `target`, methods bound to it, with `overrides` taking precedence. */
function wrap<T extends object>(target: T, overrides: Partial<Record<keyof T | string, unknown>>): T {
  return new Proxy(target, {
    get(t, p) {
      if (typeof p === 'string' && Object.hasOwn(overrides, p)) return overrides[p];
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

/** The sink reads slices (the `copy` point counts rows from then on), and the rows it read so far. */
let importing = false;
let rowsRead = 0;

function wrapSession(session: StagingSession): StagingSession {
  return wrap(session, {
    writer: (opts?: Parameters<StagingSession['writer']>[0]) => {
      const w = session.writer(opts);
      return wrap(w, {
        close: async () => {
          await w.close();
          hit('slice-staged');
        },
      });
    },
    seal: async () => {
      await session.seal();
      hit('sealed');
    },
    destroy: async () => {
      await session.destroy();
      hit('session-destroyed');
    },
    reader: (opts?: Parameters<StagingSession['reader']>[0]) => {
      const r = session.reader(opts);
      if (opts?.slice === undefined) return r;
      importing = true;
      return withCrashPoint(r);
    },
  });
}

/** A slice reader with the `copy` point after CRASH_ROWS rows went to the sink (pass-through: newlines). */
function withCrashPoint(r: RecordReader): RecordReader {
  return {
    ...(r.iterEncoded ? { iterEncoded: () => encodedWithCrashPoint(r.iterEncoded!()) } : {}),
    async *iterBatches(chunkSize: number) {
      for await (const batch of r.iterBatches(chunkSize)) {
        if (importing && rowsRead < crashRows && rowsRead + batch.length >= crashRows) {
          // Hand the rows before the crash point to COPY first, so the server holds part of the slice.
          const cut = crashRows - rowsRead;
          rowsRead += cut;
          yield batch.slice(0, cut);
          await new Promise((res) => setTimeout(res, 50));
          hit('copy');
          yield batch.slice(cut);
          rowsRead += batch.length - cut;
          continue;
        }
        rowsRead += batch.length;
        yield batch;
      }
    },
  };
}

/**
 * A slice the overlapped import hands over while it is exported (a live slice) is read from the export, not from a
 * staging reader: its reader gets the `copy` point here, in the sink's wrapper.
 */
function liveWithCrashPoint(s: ImportSlice): ImportSlice {
  if (!isLiveSlice(s)) return s;
  importing = true;
  return withReader(s, withCrashPoint(s.reader));
}

async function* encodedWithCrashPoint(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (env.CODEC === 'arrow') {
    // Arrow rows are not lines: the point is reached inside the first chunk of every slice, with the sink's
    // COPY transaction open and the slice's bytes partly read (what the sink wrote by then is the transcoder's)
    let first = importing;
    for await (const chunk of chunks) {
      if (!first || chunk.length < 2) {
        yield chunk;
        continue;
      }
      first = false;
      const at = chunk.length >> 1;
      yield chunk.subarray(0, at);
      await new Promise((res) => setTimeout(res, 50));
      hit('copy');
      yield chunk.subarray(at);
    }
    return;
  }
  for await (const chunk of chunks) {
    let at = -1;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
      if (importing && rowsRead < crashRows && ++rowsRead === crashRows) at = i + 1;
    }
    if (at < 0) {
      yield chunk;
      continue;
    }
    // Hand the rows before the crash point to COPY first, so the server holds part of the slice.
    yield chunk.subarray(0, at);
    await new Promise((res) => setTimeout(res, 50));
    hit('copy');
    yield chunk.subarray(at);
  }
}

function wrapStaging(staging: StagingProvider): StagingProvider {
  return wrap(staging, {
    allocateSession: async (ctx: Parameters<StagingProvider['allocateSession']>[0]) =>
      wrapSession(await staging.allocateSession(ctx)),
    openSession: async (ref: Parameters<StagingProvider['openSession']>[0]) =>
      wrapSession(await staging.openSession(ref)),
  });
}

function wrapKv(kv: KvStore, cpKeyText: string): KvStore {
  return wrap(kv, {
    put: async (
      key: Parameters<KvStore['put']>[0],
      value: Parameters<KvStore['put']>[1],
      opts?: Parameters<KvStore['put']>[2],
    ) => {
      const entry = await kv.put(key, value, opts);
      if (key.key === cpKeyText) {
        say(`@@checkpoint ${JSON.stringify({ version: entry.version, value })}`);
        hit('checkpoint-put');
      } else if (key.key === `${cpKeyText}::run`) {
        hit(`state-${(value as { phase?: string }).phase}`);
      } else if (key.key === `${cpKeyText}::lease`) {
        say(`@@lease ${JSON.stringify({ version: entry.version, state: (value as { state?: string }).state })}`);
      }
      return entry;
    },
  });
}

/** The sink's pool: its clients report every COMMIT of a slice transaction. */
function wrapPool(pool: pg.Pool): pg.Pool {
  return wrap(pool, {
    connect: async () => {
      const client = await pool.connect();
      return wrap(client, {
        query: (...args: unknown[]) => {
          const out = (client.query as (...a: unknown[]) => unknown)(...args);
          if (args[0] === 'COMMIT' && out && typeof (out as Promise<unknown>).then === 'function') {
            return (out as Promise<unknown>).then((r) => {
              hit('slice-committed');
              return r;
            });
          }
          return out;
        },
      });
    },
  });
}

async function stagingProvider(): Promise<StagingProvider> {
  const prefix = env.STAGING_PREFIX ?? 'ingestion';
  const codec =
    env.CODEC === 'pg-copy'
      ? pgCopyCodec()
      : env.CODEC === 'arrow'
        ? // loaded only here: apache-arrow is an optional peer
          (await import('../../../src/arrow/index.js')).arrowCodec()
        : undefined;
  if ((env.STAGING ?? 'fs') === 's3') {
    // Loaded only here: the AWS SDK takes a while to import.
    const { S3Client } = await import('@aws-sdk/client-s3');
    const { S3ObjectStore } = await import('../../../src/s3/index.js');
    const client = new S3Client({
      endpoint: need('S3_ENDPOINT'),
      region: env.S3_REGION ?? 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: need('S3_ACCESS_KEY'), secretAccessKey: need('S3_SECRET_KEY') },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return new ObjectStoreStagingProvider({
      store: new S3ObjectStore({ client, bucket: need('S3_BUCKET') }),
      prefix,
      codec,
    });
  }
  return new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('FS_ROOT') }), prefix, codec });
}

function exitCode(err: unknown): number {
  if (!IngestError.is(err)) return 1;
  if (err.code === 'lease_held') return 20;
  if (err.code === 'lease_lost') return 21;
  return err.retryable ? 22 : 23;
}

async function main(): Promise<number> {
  if (env.CRASH_AFTER_MS) {
    const ms = Number(env.CRASH_AFTER_MS);
    setTimeout(() => {
      say(`@@crash timer ${ms}`);
      process.kill(process.pid, 'SIGKILL');
    }, ms);
  }
  const url = need('DATABASE_URL');
  const options = `-c search_path="${schema}",public`;
  const kvPool = new pg.Pool({ connectionString: url, max: 2, options });
  const srcPool = new pg.Pool({ connectionString: url, max: 4, options });
  const sinkPool = new pg.Pool({ connectionString: url, max: 2, options });
  for (const p of [kvPool, srcPool, sinkPool]) p.on('error', () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: kvPool }) });
  const unitId = `${schema}.src`;
  const unit = { vendor: 'postgres', endpointId: 'crash-src', unitId, sinkId: 'crash-dst' };
  const kv = new PostgresKvStore({ db, schema });
  await kv.migrate();
  const source = new PostgresSource({ pool: srcPool, units: { [unitId]: { cursorColumns: ['seq'] } } });
  const pgSink = new PostgresSink({ pool: wrapPool(sinkPool), schema, tables: { [unitId]: `${schema}.dst` } });
  const sink = wrap(pgSink, {
    import: async (req: Parameters<PostgresSink['import']>[0], ctx: Parameters<PostgresSink['import']>[1]) => {
      const out = await pgSink.import(req, ctx);
      hit('sink-returned');
      return out;
    },
    importSlices: async (
      req: Parameters<PostgresSink['importSlices']>[0],
      ctx: Parameters<PostgresSink['importSlices']>[1],
    ) => {
      const slices = req.slices;
      const out = await pgSink.importSlices(
        {
          ...req,
          slices: (async function* () {
            for await (const slice of slices) yield liveWithCrashPoint(slice);
          })(),
        },
        ctx,
      );
      hit('sink-returned');
      return out;
    },
  });
  const onEvent = (e: IngestionEvent) => {
    if (e.type === 'run.resumed') hit('resume');
    if (e.type === 'checkpoint.committed' || e.type === 'run.failed' || e.type === 'run.started')
      say(`@@event ${JSON.stringify(e)}`);
  };
  if (env.WAIT_GO === '1') {
    say('@@ready');
    await new Promise<void>((res) => process.stdin.once('data', () => res()));
    process.stdin.pause();
  }
  try {
    const result = await runUnit({
      source,
      sink,
      staging: wrapStaging(await stagingProvider()),
      kv: wrapKv(kv, checkpointKey(unit).key),
      unit,
      mode: 'incremental',
      disposition,
      ...(disposition === 'merge' ? { primaryKey: ['seq'] } : {}),
      workerId: env.WORKER_ID ?? `crash-worker:${process.pid}`,
      policy: {
        chunkSize: Number(env.CHUNK_SIZE ?? 500),
        sliceMaxRows: Number(env.SLICE_MAX_ROWS ?? 1000),
        exportConcurrency: Number(env.EXPORT_CONCURRENCY ?? 2),
        leaseTtlMs: Number(env.LEASE_TTL_MS ?? 5000),
        keepStaging: true,
        overlap: env.OVERLAP === '1',
        retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 500 },
      },
      onEvent,
    });
    say(
      `@@result ${JSON.stringify({ ok: true, runId: result.runId, stats: result.stats, resumed: (result as { resumed?: boolean }).resumed ?? false })}`,
    );
    return 0;
  } catch (err) {
    const e = err as IngestError;
    say(
      `@@result ${JSON.stringify({ ok: false, code: e.code ?? null, retryable: e.retryable ?? null, message: String(e.message) })}`,
    );
    return exitCode(err);
  } finally {
    await Promise.allSettled([source.close(), pgSink.close(), db.destroy(), srcPool.end(), sinkPool.end()]);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`@@result ${JSON.stringify({ ok: false, code: 'worker', message: String(err?.stack ?? err) })}`);
    process.exit(1);
  },
);
