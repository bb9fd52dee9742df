import type { RecordCodec } from '../contracts/staging.js';
import { copyTextRowCounter, decodeCopyText, encodeCopyText } from './copy-text.js';

/** Codec id of PostgreSQL COPY text staging ({@link pgCopyCodec}). @public */
export const PG_COPY_CODEC_ID = 'pg-copy';

/**
 * PostgreSQL COPY text as a staging codec (id `pg-copy`, extension `.pgcopy`): the PostgreSQL-to-PostgreSQL
 * pass-through. With this codec, {@link PostgresSource} stages the bytes of `COPY (SELECT …) TO STDOUT` unchanged per
 * planned slice and {@link PostgresSink} feeds them to `COPY … FROM STDIN` unchanged — no row objects in between —
 * while the staging stays durable, checksummed (sha256, byte and row counts in the manifest; rows are counted as
 * newlines, which COPY text never leaves unescaped inside a value) and resumable like any other codec.
 *
 * It is a complete {@link RecordCodec} too: rows from any source are encoded as COPY text (in the schema's column
 * order), and any sink reads a `pg-copy` slice as rows typed like the PostgreSQL source types them. A schema is
 * required in both directions (it gives the column order).
 *
 * Exactness: the bytes are PostgreSQL's own text, so every value of every type reaches a PostgreSQL target exactly
 * as the source held it (timestamps to the microsecond, numerics, JSON as written, arrays, bytea, infinities).
 *
 * @example
 * ```ts
 * import { ObjectStoreStagingProvider, runUnit } from '@nucleus/ingestion';
 * import { FileSystemObjectStore } from '@nucleus/ingestion/fs';
 * import { PostgresSink, PostgresSource, pgCopyCodec } from '@nucleus/ingestion/postgres';
 *
 * const staging = new ObjectStoreStagingProvider({
 *   store: new FileSystemObjectStore({ root: '/var/lib/ingestion' }),
 *   codec: pgCopyCodec(),
 * });
 * await runUnit({ source: new PostgresSource({ pool }), sink: new PostgresSink({ pool: target }), staging, kv,
 *   unit: { vendor: 'postgres', endpointId: 'crm', unitId: 'public.orders' } });
 * ```
 * @throws IngestError `config_invalid` when encoding or decoding without a schema; encoding throws `row_rejected`
 * for a value PostgreSQL text cannot hold (NUL); decoding throws `staging_corrupt` for bytes that are not COPY text
 * of the schema's columns.
 * @public
 */
export function pgCopyCodec(): RecordCodec {
  return {
    id: PG_COPY_CODEC_ID,
    contentType: 'text/x-postgresql-copy; charset=utf-8',
    extension: '.pgcopy',
    encode: encodeCopyText,
    decode: decodeCopyText,
    rowCounter: copyTextRowCounter,
    rowsAreLines: true,
  };
}
