/**
 * `@nucleus/ingestion/parquet` — stream rows into Parquet files with bounded memory.
 * Loads `hyparquet-writer`; the root entry never does.
 * @packageDocumentation
 */
export {
  DEFAULT_ROW_GROUP_SIZE,
  encodeParquet,
  type ParquetArrayEncoding,
  type ParquetEncodeOptions,
} from './encode-parquet.js';
