/**
 * Crash worker of the schema-evolution kill tests: one `runUnit` of the PostgreSQL table PG_SCHEMA.SRC into
 * PG_SCHEMA.DST (PostgresSink, filesystem staging under STAGING_ROOT, PostgresKvStore in PG_SCHEMA), DISPOSITION
 * `merge` or `replace`. CRASH_AT names an event type (`schema.evolved`: after the sink's ADD COLUMN, before its first
 * slice; `import.progress`: rows flowing inside the import's transaction — for a rebuilding `replace`, inside the swap's
 * transaction): the worker prints `@@crash <event>` and SIGKILLs itself there. Prints `@@result {…}` when the run ends.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import { IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../../src/postgres/index.js';

const env = process.env;
const need = (name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`schema-evolve-worker: ${name} is not set`);
  return v;
};
const schema = need('PG_SCHEMA');
const url = need('PG_URL');
const say = (line: string) => process.stdout.write(`${line}\n`);

const pool = new pg.Pool({ connectionString: url, max: 4 });
const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
const kv = new PostgresKvStore({ db, schema });
await kv.migrate();
const unitId = `${schema}.${need('SRC')}`;
try {
  const r = await runUnit({
    source: new PostgresSource({ pool }),
    sink: new PostgresSink({ pool, tables: { [unitId]: `${schema}.${need('DST')}` } }),
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('STAGING_ROOT') }) }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'evolve-crash', unitId, sinkId: 'pg' },
    mode: 'full',
    disposition: need('DISPOSITION') as 'merge' | 'replace',
    primaryKey: ['id'],
    policy: { leaseTtlMs: Number(env.LEASE_TTL_MS ?? 1500), retry: { maxAttempts: 1 } },
    onEvent: (e) => {
      say(`@@event ${e.type}`);
      if (e.type === env.CRASH_AT) {
        say(`@@crash ${e.type}`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
  });
  say(`@@result ${JSON.stringify({ ok: true, runId: r.runId, resumed: r.resumed ?? false, stats: r.stats })}`);
} catch (err) {
  const e = IngestError.is(err) ? err : undefined;
  say(`@@result ${JSON.stringify({ ok: false, code: e?.code ?? null, message: String((err as Error)?.message) })}`);
} finally {
  await pool.end();
  await db.destroy();
}
