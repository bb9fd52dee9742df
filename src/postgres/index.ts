/**
 * `@nucleus/ingestion/postgres` — PostgreSQL: the canonical KvStore, a JDBC-style source and a COPY-based sink.
 * Loads `pg`, `pg-copy-streams` and `kysely` (optional peer dependencies).
 * @packageDocumentation
 */

export {
  type PostgresCdcCheckpoint,
  type PostgresCdcSlotStatus,
  PostgresCdcSource,
  type PostgresCdcSourceConfig,
  type PostgresCdcSourceOptions,
  type PostgresCdcUnitConfig,
  postgresCdcSourceConfigSchema,
  postgresCdcSourceDescriptor,
} from './cdc/cdc-source-exports.js';
export type { PgPoolLike } from './connection.js';
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
export { PG_COPY_CODEC_ID, pgCopyCodec } from './pg-copy-codec.js';
export { CdmJdbcSink, cdmJdbcSink, PostgresSink } from './sink.js';
export {
  cdmJdbcSinkDescriptor,
  type PostgresSinkConfig,
  type PostgresSinkOptions,
  postgresSinkConfigSchema,
  postgresSinkDescriptor,
} from './sink-config.js';
export { PostgresSource } from './source.js';
export {
  type PostgresCheckpoint,
  type PostgresCheckpointV1,
  type PostgresSourceConfig,
  type PostgresSourceOptions,
  type PostgresUnitConfig,
  postgresSourceConfigSchema,
  postgresSourceDescriptor,
} from './source-config.js';
export {
  createTypeParsers,
  fieldTypeToPgType,
  type PgTypeInfo,
  pgTypeToFieldType,
  type TypeParsers,
} from './type-mapping.js';
