/**
 * `@nucleus/ingestion/mysql` — MySQL and MariaDB: a KvStore, a source and a sink.
 * Loads `mysql2` and `kysely` (optional peer dependencies).
 * @packageDocumentation
 */

export {
  formatMySqlTableName,
  MAX_MYSQL_IDENTIFIER_CHARS,
  type MySqlTableName,
  mySqlQualifiedName,
  parseMySqlTableName,
  quoteMySqlIdentifier,
} from './identifiers.js';
export { MySqlKvStore, type MySqlKvStoreOptions } from './kv-store.js';
