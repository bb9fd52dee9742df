import { sql } from 'kysely';
import { type KvDialect, SqlKvStore, type SqlKvStoreOptions } from '../sql/kv-store.js';
import { mySqlDialect } from './dialect.js';

/** Options of {@link MySqlKvStore}. @public */
export interface MySqlKvStoreOptions extends SqlKvStoreOptions {
  /** Database of the table; the connection's default database when absent. MySQL 8 and MariaDB 10.6+ both work. */
  database?: string;
}

/**
 * MySQL's part of the SQL KvStore: `VARBINARY` keys (bytewise order, no trailing-space padding, case-sensitive; their
 * lengths keep the primary key under InnoDB's 3072-byte limit), JSON text in a binary-collated `LONGTEXT`, UTC
 * `DATETIME(3)` times whatever the session time zone, and InnoDB's duplicate key / deadlock / lock wait timeout,
 * after which a write runs again.
 */
const mySqlKv: KvDialect = {
  ...mySqlDialect,
  ddl: (t, _database, index) => [
    sql`CREATE TABLE IF NOT EXISTS ${t} (
      namespace VARBINARY(255) NOT NULL,
      scope_id VARBINARY(255) NOT NULL,
      \`key\` VARBINARY(1024) NOT NULL,
      value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      version BIGINT NOT NULL,
      created_at DATETIME(3) NOT NULL,
      updated_at DATETIME(3) NOT NULL,
      expires_at DATETIME(3) NULL,
      PRIMARY KEY (namespace, scope_id, \`key\`),
      KEY ${index} (expires_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  ],
  store: 'MySqlKvStore',
  schemaOption: 'database',
  now: sql`UTC_TIMESTAMP(3)`,
  nowPlus: (ms) => sql`(UTC_TIMESTAMP(3) + INTERVAL ${sql.lit(ms * 1000)} MICROSECOND)`,
  epochMs: (column) => sql`TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ${sql.ref(column)}) DIV 1000`,
  returning: false,
  valueText: sql`value`,
  keyBytes: { namespace: 255, scopeId: 255, key: 1024 },
  serverCode: (err) => (err as { errno?: number })?.errno,
  rerunOn: new Set([1062, 1213, 1205]),
  migrateRaces: new Set(),
};

/**
 * A `KvStore` on MySQL or MariaDB: versioned entries in one InnoDB table, on an injected kysely instance.
 * Compare-and-set, TTL tombstones and fencing versions as the shared SQL KvStore does (ADR 0009).
 *
 * @example
 * ```ts
 * import { Kysely, MysqlDialect } from 'kysely';
 * import { createPool } from 'mysql2';
 * import { MySqlKvStore } from '@nucleus/ingestion/mysql';
 *
 * const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: createPool({ uri: 'mysql://app@db/ingest' }) }) });
 * const kv = new MySqlKvStore({ db });
 * await kv.migrate();
 * const e = await kv.put({ namespace: 'ingestion', scopeId: 'default', key: 'k' }, { at: 1 }, { expectedVersion: null });
 * ```
 * @throws IngestError `config_invalid` for bad options; methods throw `kv_conflict` (CAS lost) and `kv_failed` (database).
 * @public
 */
export class MySqlKvStore extends SqlKvStore {
  constructor(options: MySqlKvStoreOptions) {
    super(mySqlKv, options);
  }
}
