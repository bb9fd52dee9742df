/**
 * Crash worker of the MariaDB schema-evolution kill tests: one `runUnit` of the MariaDB table SRC into DST of the same
 * database (MY_URL; MySqlSource, MySqlSink, filesystem staging under STAGING_ROOT, MySqlKvStore in that database),
 * DISPOSITION `merge`, `append` or `replace`. CRASH_AT names an event type (`schema.evolved`: after the sink's
 * ADD COLUMN, before its first slice): the worker prints `@@crash <event>` and SIGKILLs itself there. Prints
 * `@@result {…}` when the run ends.
 */
import { Kysely, MysqlDialect } from 'kysely';
import mysql from 'mysql2';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import { IngestError, ObjectStoreStagingProvider, runUnit } from '../../../src/index.js';
import { MySqlKvStore, MySqlSink, MySqlSource } from '../../../src/mysql/index.js';

const env = process.env;
const need = (name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`schema-evolve-worker-mysql: ${name} is not set`);
  return v;
};
const url = need('MY_URL');
const say = (line: string) => process.stdout.write(`${line}\n`);
const newPool = (connectionLimit: number) =>
  mysql.createPool({
    uri: url,
    connectionLimit,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    timezone: 'Z',
    charset: 'utf8mb4',
  });

const pool = newPool(4);
const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: newPool(2) }) });
const kv = new MySqlKvStore({ db });
await kv.migrate();
const database = new URL(url).pathname.slice(1);
const unitId = `${database}.${need('SRC')}`;
try {
  const r = await runUnit({
    source: new MySqlSource({ pool }),
    sink: new MySqlSink({ pool, tables: { [unitId]: need('DST') } }),
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: need('STAGING_ROOT') }) }),
    kv,
    unit: { vendor: 'mysql', endpointId: 'evolve-crash-my', unitId, sinkId: 'my' },
    mode: 'full',
    disposition: need('DISPOSITION') as 'merge' | 'append' | 'replace',
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
  await new Promise<void>((r) => pool.end(() => r()));
  await db.destroy();
}
