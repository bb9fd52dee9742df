/**
 * `@nucleus/ingestion/mysql` — MySQL and MariaDB: a KvStore, a source and a sink.
 * Loads `mysql2` and `kysely` (optional peer dependencies).
 * @packageDocumentation
 */

export type { MySqlPoolLike } from './connection.js';
export {
  assertIdentifier,
  formatMySqlTableName,
  formatTableName,
  MAX_IDENTIFIER_CHARS,
  MAX_MYSQL_IDENTIFIER_CHARS,
  type MySqlTableName,
  mySqlQualifiedName,
  parseMySqlTableName,
  parseTableName,
  qualifiedName,
  quoteIdentifier,
  quoteMySqlIdentifier,
  type TableName,
} from './identifiers.js';
export { MySqlKvStore, type MySqlKvStoreOptions } from './kv-store.js';
export { MYSQL_LOAD_DATA_CODEC_ID, mySqlLoadDataCodec } from './load-data-codec.js';
export { MySqlSink } from './sink.js';
export {
  type MySqlLoadMethod,
  type MySqlSinkConfig,
  type MySqlSinkOptions,
  mySqlSinkConfigSchema,
  mySqlSinkDescriptor,
} from './sink-config.js';
export { MySqlSource } from './source.js';
export {
  type MySqlCheckpoint,
  type MySqlSourceConfig,
  type MySqlSourceOptions,
  type MySqlUnitConfig,
  mySqlSourceConfigSchema,
  mySqlSourceDescriptor,
} from './source-config.js';
export type { ZeroDatePolicy } from './type-mapping.js';
