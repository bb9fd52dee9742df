/**
 * Crash worker of the JetStream suite: one `runUnit` of a NATS JetStream stream (unit `ev`: every subject) →
 * filesystem staging → PostgreSQL sink (`<schema>.ev`), with PostgresKvStore checkpoints. It kills itself with SIGKILL
 * at a named point so crash-nats.test.ts can prove each message lands exactly once.
 *
 * Environment:
 *   DATABASE_URL, PG_SCHEMA      where the target `ev`, the ledger and `kv_entries` live
 *   NATS_URL, STREAM             the stream (default server 127.0.0.1:4222)
 *   FS_ROOT                      staging directory
 *   CRASH_AT / CRASH_N           SIGKILL at the N-th (default 1st) hit of a point:
 *                                  slice-staged  a slice staged (export not sealed)
 *                                  sealed        the session sealed (_SUCCESS), run state still exporting
 *                                  sink-returned the sink committed every slice; checkpoint not moved
 *                                  checkpoint-put the checkpoint moved; run state, _LANDED and confirm() not yet
 *                                  confirm       confirm() called (the point where an acking design would ack)
 *   MAX_MESSAGES, SLICE_MAX_ROWS, LEASE_TTL_MS
 *
 * Prints `@@point <name> <n>` per reached point and one `@@result {json}`. Exit codes as crash-worker.ts:
 * 0 committed, 20 lease_held, 21 lease_lost, 22 other retryable IngestError, 23 non-retryable, 1 other.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import type { KvStore, StagingProvider, StagingSession } from '../../../src/index.js';
import { checkpointKey, IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { JetStreamSource } from '../../../src/nats/index.js';
import { PostgresKvStore, PostgresSink } from '../../../src/postgres/index.js';

const env = process.env;
const hits = new Map<string, number>();
const need = (name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`nats-crash-worker: ${name} is not set`);
  return v;
};
const say = (line: string) => process.stdout.write(`${line}\n`);

function hit(point: string): void {
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  say(`@@point ${point} ${n}`);
  if (env.CRASH_AT === point && n === Number(env.CRASH_N ?? 1)) {
    say(`@@crash ${point}`);
    process.kill(process.pid, 'SIGKILL');
  }
}

function wrap<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, p) {
      if (typeof p === 'string' && Object.hasOwn(overrides, p)) return overrides[p];
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

const wrapSession = (session: StagingSession): StagingSession =>
  wrap(session, {
    writer: (opts?: Parameters<StagingSession['writer']>[0]) => {
      const w = session.writer(opts);
      return wrap(w, {
        close: async () => {
          await w.close();
          hit('slice-staged');
        },
      });
    },
    seal: async (...args: unknown[]) => {
      await (session.seal as (...a: unknown[]) => Promise<void>)(...args);
      hit('sealed');
    },
  });

const wrapStaging = (staging: StagingProvider): StagingProvider =>
  wrap(staging, {
    allocateSession: async (ctx: Parameters<StagingProvider['allocateSession']>[0]) =>
      wrapSession(await staging.allocateSession(ctx)),
    openSession: async (ref: Parameters<StagingProvider['openSession']>[0]) =>
      wrapSession(await staging.openSession(ref)),
  });

const wrapKv = (kv: KvStore, cpKey: string): KvStore =>
  wrap(kv, {
    put: async (key: Parameters<KvStore['put']>[0], value: Parameters<KvStore['put']>[1], opts?: any) => {
      const entry = await kv.put(key, value, opts);
      if (key.key === cpKey) {
        say(`@@checkpoint ${JSON.stringify({ version: entry.version, value })}`);
        hit('checkpoint-put');
      }
      return entry;
    },
  });

function exitCode(err: unknown): number {
  if (!IngestError.is(err)) return 1;
  if (err.code === 'lease_held') return 20;
  if (err.code === 'lease_lost') return 21;
  return err.retryable ? 22 : 23;
}

async function main(): Promise<number> {
  const schema = need('PG_SCHEMA');
  const options = `-c search_path="${schema}",public`;
  const kvPool = new pg.Pool({ connectionString: need('DATABASE_URL'), max: 2, options });
  const sinkPool = new pg.Pool({ connectionString: need('DATABASE_URL'), max: 2, options });
  for (const p of [kvPool, sinkPool]) p.on('error', () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: kvPool }) });
  const kv = new PostgresKvStore({ db, schema });
  await kv.migrate();
  const unit = { vendor: 'nats', endpointId: 'nats-crash', unitId: 'ev', sinkId: 'pg' };
  const js = new JetStreamSource({
    servers: env.NATS_URL ?? '127.0.0.1:4222',
    stream: need('STREAM'),
    units: { ev: {} },
    maxMessages: Number(env.MAX_MESSAGES ?? 1000),
    fetchBatch: 500,
  });
  const source = wrap(js, {
    confirm: async (req: Parameters<JetStreamSource['confirm']>[0]) => {
      hit('confirm');
      return js.confirm(req);
    },
  });
  const pgSink = new PostgresSink({ pool: sinkPool, schema });
  const sink = wrap(pgSink, {
    import: async (req: Parameters<PostgresSink['import']>[0], ctx: Parameters<PostgresSink['import']>[1]) => {
      const out = await pgSink.import(req, ctx);
      hit('sink-returned');
      return out;
    },
  });
  try {
    const result = await runUnit({
      source,
      sink,
      staging: wrapStaging(
        new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('FS_ROOT') }) }),
      ),
      kv: wrapKv(kv, checkpointKey(unit).key),
      unit,
      mode: 'incremental',
      disposition: 'append',
      workerId: `nats-crash-worker:${process.pid}`,
      policy: {
        sliceMaxRows: Number(env.SLICE_MAX_ROWS ?? 300),
        leaseTtlMs: Number(env.LEASE_TTL_MS ?? 2000),
        retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 500 },
      },
    });
    say(`@@result ${JSON.stringify({ ok: true, runId: result.runId, stats: result.stats })}`);
    return 0;
  } catch (err) {
    const e = err as IngestError;
    say(
      `@@result ${JSON.stringify({ ok: false, code: e.code ?? null, retryable: e.retryable ?? null, message: String(e.message) })}`,
    );
    return exitCode(err);
  } finally {
    await Promise.allSettled([js.close(), pgSink.close(), db.destroy(), sinkPool.end()]);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`@@result ${JSON.stringify({ ok: false, code: 'worker', message: String(err?.stack ?? err) })}`);
    process.exit(1);
  },
);
