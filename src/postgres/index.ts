/**
 * `@nucleus/ingestion/postgres` — PostgreSQL: the canonical KvStore, a JDBC-style source and a COPY-based sink.
 * Loads `pg`, `pg-copy-streams` and `kysely` (optional peer dependencies).
 * @packageDocumentation
 */

export {
  assertIdentifier,
  formatTableName,
  MAX_IDENTIFIER_BYTES,
  parseTableName,
  qualifiedName,
  quoteIdentifier,
  type TableName,
} from './identifiers.js';
export { PostgresKvStore, type PostgresKvStoreOptions } from './kv-store.js';
