/**
 * Crash worker, MySQL variant: one `runUnit` of a PostgreSQL table of sequence numbers → filesystem staging →
 * MySqlSink into MariaDB, with MySqlKvStore checkpoints (MariaDB). Same crash points, environment and exit codes as
 * crash-worker.ts (read its header), plus MYSQL_URL (the sink database; `dst`, the ledger and `kv_entries` live there).
 * `slice-committed` is reached when a sink connection's COMMIT returns. PACE_MS slows each staged batch down.
 */
import { Kysely, MysqlDialect } from 'kysely';
import mysql from 'mysql2';
import pg from 'pg';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import type { IngestionEvent, KvStore, StagingProvider, StagingSession } from '../../../src/index.js';
import { checkpointKey, IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { MySqlKvStore, MySqlSink } from '../../../src/mysql/index.js';
import { PostgresSource } from '../../../src/postgres/index.js';

const env = process.env;
const schema = need('PG_SCHEMA');
const disposition = (env.DISPOSITION ?? 'append') as 'append' | 'merge';
const crashAt = env.CRASH_AT;
const crashN = Number(env.CRASH_N ?? 1);
const pauseAt = env.PAUSE_AT;
const pauseN = Number(env.PAUSE_N ?? 1);
const crashRows = Number(env.CRASH_ROWS ?? 500);
const hits = new Map<string, number>();
const paceMs = Number(env.PACE_MS ?? 0);

/** PACE_MS: a pause per staged batch, so that runs last long enough for random kills to land inside them. */
function pace(): Promise<void> {
  return paceMs > 0 ? new Promise((r) => setTimeout(r, paceMs)) : Promise.resolve();
}

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

function wrapSession(session: StagingSession): StagingSession {
  let importing = false;
  let rowsRead = 0;
  return wrap(session, {
    writer: (opts?: Parameters<StagingSession['writer']>[0]) => {
      const w = session.writer(opts);
      return wrap(w, {
        writeBatch: async (batch: Parameters<typeof w.writeBatch>[0]) => {
          await pace();
          await w.writeBatch(batch);
        },
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
      return {
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
            await pace();
            yield batch;
          }
        },
      };
    },
  });
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

/** The sink's mysql2 pool: its connections report every COMMIT of a slice transaction. */
function wrapMySqlPool(pool: mysql.Pool): mysql.Pool {
  return wrap(pool, {
    getConnection: (cb: (err: unknown, conn?: unknown) => void) =>
      pool.getConnection((err, conn) => {
        if (err) return cb(err);
        cb(
          null,
          wrap(conn, {
            query: (opts: { sql?: string }, ...rest: unknown[]) => {
              const cb2 = rest[rest.length - 1];
              if (opts?.sql === 'COMMIT' && typeof cb2 === 'function') {
                return conn.query(opts as never, (e: unknown, ...r: unknown[]) => {
                  if (!e) hit('slice-committed');
                  (cb2 as (...a: unknown[]) => void)(e, ...r);
                });
              }
              return (conn.query as (...a: unknown[]) => unknown)(opts, ...rest);
            },
          }),
        );
      }),
  });
}

async function stagingProvider(): Promise<StagingProvider> {
  const prefix = env.STAGING_PREFIX ?? 'ingestion';
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
    return new ObjectStoreStagingProvider({ store: new S3ObjectStore({ client, bucket: need('S3_BUCKET') }), prefix });
  }
  return new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('FS_ROOT') }), prefix });
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
  const mysqlUrl = need('MYSQL_URL');
  const srcPool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path="${schema}",public` });
  srcPool.on('error', () => {});
  const exact = { supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, timezone: 'Z' } as const;
  const kvPool = mysql.createPool({ uri: mysqlUrl, connectionLimit: 2, ...exact });
  const sinkPool = mysql.createPool({ uri: mysqlUrl, connectionLimit: 2, ...exact });
  const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: kvPool }) });
  const unitId = `${schema}.src`;
  const unit = { vendor: 'postgres', endpointId: 'crash-src', unitId, sinkId: 'crash-dst' };
  const kv = new MySqlKvStore({ db });
  await kv.migrate();
  const source = new PostgresSource({ pool: srcPool, units: { [unitId]: { cursorColumns: ['seq'] } } });
  const mySink = new MySqlSink({
    pool: wrapMySqlPool(sinkPool),
    tables: { [unitId]: 'dst' },
    ...(env.LOAD_METHOD ? { loadMethod: env.LOAD_METHOD as 'insert' } : {}),
  });
  const sink = wrap(mySink, {
    import: async (req: Parameters<MySqlSink['import']>[0], ctx: Parameters<MySqlSink['import']>[1]) => {
      const out = await mySink.import(req, ctx);
      hit('sink-returned');
      return out;
    },
    importSlices: async (
      req: Parameters<MySqlSink['importSlices']>[0],
      ctx: Parameters<MySqlSink['importSlices']>[1],
    ) => {
      const out = await mySink.importSlices(req, ctx);
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
        // the named points (state-exported, …) are those of a run whose phases stay apart; OVERLAP=1: ADR 0018
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
    await Promise.allSettled([
      source.close(),
      mySink.close(),
      db.destroy(),
      srcPool.end(),
      new Promise<void>((r) => sinkPool.end(() => r())),
    ]);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`@@result ${JSON.stringify({ ok: false, code: 'worker', message: String(err?.stack ?? err) })}`);
    process.exit(1);
  },
);
