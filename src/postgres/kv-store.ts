import { sql } from 'kysely';
import { type KvDialect, SqlKvStore, type SqlKvStoreOptions } from '../sql/kv-store.js';
import { postgresDialect } from './dialect.js';

/** Options of {@link PostgresKvStore}. @public */
export interface PostgresKvStoreOptions extends SqlKvStoreOptions {
  /** Schema of the table, created by `migrate()` when missing; unqualified (the connection's `search_path`) when absent. */
  schema?: string;
}

/**
 * PostgreSQL's part of the SQL KvStore: `text` keys in the "C" collation (bytewise order), `jsonb` values read back as
 * text (never through the driver's JSON parser), `timestamptz` times from `statement_timestamp()`, every `put` one
 * statement, and the catalog races of concurrent `CREATE … IF NOT EXISTS`.
 */
const postgresKv: KvDialect = {
  ...postgresDialect,
  ddl: (t, schema, index) => [
    ...(schema === undefined ? [] : [sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`]),
    sql`CREATE TABLE IF NOT EXISTS ${t} (
      namespace text NOT NULL,
      scope_id text NOT NULL,
      key text COLLATE "C" NOT NULL,
      value jsonb NOT NULL,
      version bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NULL,
      PRIMARY KEY (namespace, scope_id, key)
    )`,
    sql`CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
  ],
  store: 'PostgresKvStore',
  schemaOption: 'schema',
  now: sql`statement_timestamp()`,
  nowPlus: (ms) => sql`(statement_timestamp() + ${sql.lit(ms)} * interval '1 millisecond')`,
  epochMs: (column) => sql`floor(extract(epoch FROM ${sql.ref(column)}) * 1000)::bigint`,
  returning: true,
  // a stopped writer must not hold the key's row lock (a paused lease holder renewing): one statement per put
  oneStatementPut: true,
  valueText: sql`value::text`,
  serverCode: (err) => (err as { code?: string })?.code,
  // unique_violation (a concurrent first insert), deadlock_detected, serialization_failure
  rerunOn: new Set(['23505', '40P01', '40001']),
  // unique_violation, duplicate_object, duplicate_table, duplicate_schema: a concurrent CREATE … IF NOT EXISTS won
  migrateRaces: new Set(['23505', '42710', '42P07', '42P06']),
};

/**
 * The canonical `KvStore`: versioned entries in one PostgreSQL table, on an injected kysely instance (any
 * kysely PostgreSQL dialect). Compare-and-set, TTL tombstones and fencing versions as the shared SQL KvStore does (ADR 0009).
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely';
 * import pg from 'pg';
 * import { PostgresKvStore } from '@nucleus/ingestion/postgres';
 *
 * const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) });
 * const kv = new PostgresKvStore({ db });
 * await kv.migrate();
 * const e = await kv.put({ namespace: 'ingestion', scopeId: 'default', key: 'k' }, { at: 1 }, { expectedVersion: null });
 * ```
 * @throws IngestError `config_invalid` for bad options; methods throw `kv_conflict` (CAS lost) and `kv_failed` (database).
 * @public
 */
export class PostgresKvStore extends SqlKvStore {
  constructor(options: PostgresKvStoreOptions) {
    super(postgresKv, options);
  }
}
