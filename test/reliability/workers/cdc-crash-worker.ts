/**
 * One CDC run in a child process: PostgresCdcSource → filesystem staging → PostgresSink, checkpoints in a
 * PostgresKvStore, all on the private logical cluster. It kills itself with SIGKILL at a named point:
 *   snapshot-batch   the snapshot yielded a batch (slot created, table partly read)
 *   slice-staged     a slice writer closed (staged, not imported)
 *   sink-returned    the sink committed every slice; the checkpoint has not moved
 *   checkpoint-put   the checkpoint moved; the slot is not confirmed yet
 *   confirmed        the slot was confirmed (the run's last step)
 * Environment: DATABASE_URL, FS_ROOT, UNIT, PUBLICATION, SLOT, ENDPOINT, TARGET_SCHEMA, DISPOSITION, CRASH_AT, CRASH_N,
 * LEASE_TTL_MS. Prints `@@point <name> <n>` and one `@@result {json}`; exit codes as the crash worker's.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import type { KvStore, SourceEndpoint, StagingProvider, StagingSession } from '../../../src/index.js';
import { checkpointKey, IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { PostgresCdcSource, PostgresKvStore, PostgresSink } from '../../../src/postgres/index.js';

const env = process.env;
const need = (k: string) => {
  const v = env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const say = (line: string) => process.stdout.write(`${line}\n`);
const hits = new Map<string, number>();
const crashAt = env.CRASH_AT;
const crashN = Number(env.CRASH_N ?? 1);

function hit(point: string): void {
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  say(`@@point ${point} ${n}`);
  if (crashAt === point && n === crashN) {
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

function wrapKv(kv: KvStore, cpKey: string): KvStore {
  return wrap(kv, {
    put: async (key: Parameters<KvStore['put']>[0], value: Parameters<KvStore['put']>[1], opts?: any) => {
      const entry = await kv.put(key, value, opts);
      if (key.key === cpKey) {
        say(`@@checkpoint ${JSON.stringify({ version: entry.version, value })}`);
        hit('checkpoint-put');
      }
      return entry;
    },
  });
}

async function main(): Promise<number> {
  const url = need('DATABASE_URL');
  const unitId = need('UNIT');
  const kvPool = new pg.Pool({ connectionString: url, max: 2 });
  kvPool.on('error', () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: kvPool }) });
  const kv = new PostgresKvStore({ db, schema: 'kv' });
  await kv.migrate();
  const cdc = new PostgresCdcSource({
    connectionString: url,
    publication: need('PUBLICATION'),
    slot: need('SLOT'),
    units: [unitId],
    batchRows: 100,
    maxRows: Number(env.MAX_ROWS ?? 2000),
    maxWaitMs: 3000,
  });
  const source: SourceEndpoint<any> = wrap(cdc, {
    read: (req: Parameters<PostgresCdcSource['read']>[0], ctx: Parameters<PostgresCdcSource['read']>[1]) =>
      (async function* () {
        for await (const b of cdc.read(req, ctx)) {
          yield b;
          if (req.checkpoint == null) hit('snapshot-batch');
        }
      })(),
    confirm: async (
      req: Parameters<PostgresCdcSource['confirm']>[0],
      ctx: Parameters<PostgresCdcSource['confirm']>[1],
    ) => {
      await cdc.confirm(req, ctx);
      hit('confirmed');
    },
  });
  const pgSink = new PostgresSink({ connectionString: url, schema: need('TARGET_SCHEMA') });
  const sink = wrap(pgSink, {
    import: async (req: Parameters<PostgresSink['import']>[0], ctx: Parameters<PostgresSink['import']>[1]) => {
      const out = await pgSink.import(req, ctx);
      hit('sink-returned');
      return out;
    },
  });
  const unit = { vendor: 'postgres', endpointId: need('ENDPOINT'), unitId };
  try {
    const result = await runUnit({
      source,
      sink,
      staging: wrapStaging(
        new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('FS_ROOT') }) }),
      ),
      kv: wrapKv(kv, checkpointKey(unit).key),
      unit,
      disposition: (env.DISPOSITION ?? 'merge') as 'merge' | 'append',
      workerId: `cdc-worker:${process.pid}`,
      policy: {
        sliceMaxRows: 300,
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
    if (!IngestError.is(err)) return 1;
    if (e.code === 'lease_held') return 20;
    if (e.code === 'lease_lost') return 21;
    return e.retryable ? 22 : 23;
  } finally {
    await Promise.allSettled([cdc.close(), pgSink.close(), db.destroy()]);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`@@result ${JSON.stringify({ ok: false, code: 'worker', message: String(err?.stack ?? err) })}`);
    process.exit(1);
  },
);
