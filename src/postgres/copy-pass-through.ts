import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ImportRequest, ImportSlice } from '../contracts/sink-endpoint.js';
import type { EncodedBatch } from '../contracts/source-endpoint.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { countLines } from '../sql/ledger-text.js';
import { throwIfAborted } from '../util/abort.js';
import { LineSizeCheck } from '../util/line-size-check.js';
import { CopyOutStream } from './copy-out-stream.js';
import { quoteIdentifier } from './identifiers.js';
import { PG_COPY_CODEC_ID } from './pg-copy-codec.js';
import type { CopyTextColumn, CopyTranscoderFactory, CopyTranscoderOptions } from './transcode.js';

/*
 * The PostgreSQL-to-PostgreSQL pass-through (docs/decisions/0006-postgres-pass-through-and-pipelining.md): the source
 * stages the bytes of `COPY (SELECT …) TO STDOUT` (text format) unchanged, the sink feeds them to
 * `COPY … FROM STDIN` unchanged. Nothing here builds a row object.
 */

/** Text settings of the export, on top of the source's read settings (interval text every server reads back). */
const COPY_SETTINGS = "SET LOCAL IntervalStyle = 'postgres'";

/** Text settings of the import (inside the slice transaction). */
const COPY_IN_SETTINGS =
  "SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL DateStyle = 'ISO, YMD'";

/** What {@link copyOutSlice} needs from the source. */
export interface CopyOutHost {
  /** `PostgresSource.readEncoded of "s.t" (slice 3)`, for messages. */
  what: string;
  signal?: AbortSignal;
  connect(): Promise<pg.PoolClient>;
  /** SQL run right after `BEGIN`: the read settings (DateStyle, TimeZone, bytea_output, extra_float_digits). */
  settings: string;
  /** Inside the read transaction: the slice's SELECT (with `$n` parameters) and the unit's schema; no SELECT when the slice is empty. */
  prepare(client: pg.PoolClient): Promise<{ schema: RecordSchema; select?: { text: string; values: unknown[] } }>;
  /** Turn a failure into the source's error. */
  wrap(err: unknown): IngestError;
}

/**
 * One planned slice as COPY text, in one `REPEATABLE READ, READ ONLY` transaction with the source's read settings.
 * The first batch carries the schema (an empty slice yields one empty batch with it). Parameters reach the
 * server through `set_config` (COPY takes none), never spliced into the SQL text.
 */
export async function* copyOutSlice(host: CopyOutHost): AsyncGenerator<EncodedBatch> {
  throwIfAborted(host.signal, host.what);
  const client = await host.connect();
  let done = false;
  let stream: CopyOutStream | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await client.query(host.settings);
    await client.query(COPY_SETTINGS);
    const { schema, select } = await host.prepare(client);
    let first = true;
    if (select) {
      const { text, names } = inlineParameters(select.text, select.values.length);
      if (select.values.length) {
        await client.query(
          `SELECT ${names.map((n, i) => `set_config('${n}', $${i + 1}::text, true)`).join(', ')}`,
          select.values.map((v) => (v === null || v === undefined ? null : String(v))),
        );
      }
      stream = client.query(new CopyOutStream(`COPY (${text}) TO STDOUT`));
      for await (const bytes of stream as AsyncIterable<Buffer>) {
        throwIfAborted(host.signal, host.what);
        yield first ? { bytes, schema } : { bytes };
        first = false;
      }
    }
    if (first) yield { bytes: new Uint8Array(0), schema };
    await client.query('COMMIT');
    done = true;
  } catch (err) {
    throw host.wrap(err);
  } finally {
    if (!done) {
      // A COPY still streaming cannot be rolled back on this connection: drop the connection (the server aborts).
      stream?.destroy();
      if (!stream) await client.query('ROLLBACK').catch(() => {});
    }
    client.release(done ? undefined : true);
  }
}

/**
 * The batches of {@link copyOutSlice} transcoded into another codec's bytes (docs/decisions/0008-transcoded-row-paths.md):
 * the transcoder is built when the first batch arrives (after the read resolved the unit: `columns()`), and the
 * first batch out carries the schema, as in the pass-through. An empty slice still yields one empty batch.
 * `sizes`: `policy.maxRowBytes` applied to each row's COPY text; `options`: given to the transcoder's factory.
 */
export async function* transcodeCopyText(
  batches: AsyncIterable<EncodedBatch>,
  load: () => Promise<CopyTranscoderFactory>,
  columns: () => CopyTextColumn[],
  sizes?: { maxRowBytes: number; slice: number },
  options?: CopyTranscoderOptions,
): AsyncGenerator<EncodedBatch> {
  const factory = await load();
  // `maxRowBytes` on the rows' COPY text, for codecs whose staged rows are not lines (the pipeline checks lines)
  const check = sizes
    ? new LineSizeCheck(
        sizes.maxRowBytes,
        (row, bytes) =>
          new IngestError(
            'row_rejected',
            `Row ${row} of slice ${sizes.slice} is over ${sizes.maxRowBytes} bytes as COPY text, over policy.maxRowBytes`,
            { details: { slice: sizes.slice, row, bytes, maxRowBytes: sizes.maxRowBytes } },
          ),
      )
    : undefined;
  let transcoder: Awaited<ReturnType<CopyTranscoderFactory>> | undefined;
  let schema: RecordSchema | undefined;
  let pending = true;
  for await (const batch of batches) {
    if (batch.schema && !schema) schema = batch.schema;
    if (!schema) throw new Error('transcodeCopyText: the first COPY batch carries no schema');
    transcoder ??= await factory(columns(), schema, options);
    check?.check(batch.bytes);
    for (const bytes of transcoder.push(batch.bytes)) {
      if (bytes.byteLength === 0) continue;
      yield pending ? { bytes, schema } : { bytes };
      pending = false;
    }
  }
  if (transcoder) {
    for (const bytes of transcoder.end()) {
      if (bytes.byteLength === 0) continue;
      yield pending ? { bytes, schema } : { bytes };
      pending = false;
    }
  }
  if (pending) yield schema ? { bytes: new Uint8Array(0), schema } : { bytes: new Uint8Array(0) };
}

/**
 * Replace the `$n` parameters of generated SQL by `current_setting('nucleus.pass_through_<n>')` (outside quoted
 * identifiers and string literals), for statements that take no parameters (COPY).
 */
export function inlineParameters(sql: string, count: number): { text: string; names: string[] } {
  const names = Array.from({ length: count }, (_, i) => `nucleus.pass_through_${i + 1}`);
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === '"' || ch === "'") {
      // a quoted identifier or a standard string literal; a doubled quote stays inside
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === '$' && /\d/.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (/\d/.test(sql[j] ?? '')) j++;
      const n = Number(sql.slice(i + 1, j));
      if (n < 1 || n > count) throw new RangeError(`SQL refers to parameter $${n} of ${count}`);
      out += `current_setting('${names[n - 1]}')`;
      i = j;
      continue;
    }
    out += ch;
    i++;
  }
  return { text: out, names };
}

/**
 * Whether a slice can be fed to COPY unchanged: staged with `pg-copy`, readable as bytes, and a staged schema that
 * gives the column order of the bytes.
 */
export function isPassThroughSlice(req: ImportRequest, slice: ImportSlice): boolean {
  return (
    slice.codec === PG_COPY_CODEC_ID && typeof slice.reader.iterEncoded === 'function' && !!req.schema?.fields.length
  );
}

/**
 * Feed one staged `pg-copy` slice to `COPY table (columns) FROM STDIN` unchanged, with backpressure; the reader
 * verifies the bytes (sha256, size, rows) and fails before the last chunk reaches the server when they are damaged,
 * so COPY never completes on a damaged slice. Runs inside the caller's slice transaction (its settings are `LOCAL`).
 * Returns the rows the server copied.
 */
export async function copyInSlice(
  client: pg.PoolClient,
  table: string,
  columns: string[],
  slice: ImportSlice,
  opts: { signal?: AbortSignal; what: string; onRows?: (rows: number) => void },
): Promise<number> {
  // Read the source's text as it was written (UTC, postgres-style intervals), whatever the sink session's defaults:
  // a `timestamp` value staged without an offset lands in a `timestamptz` target as UTC, as on the row path.
  await client.query(COPY_IN_SETTINGS);
  const stream = client.query(
    copyFrom(`COPY ${table} (${columns.map((c) => quoteIdentifier(c)).join(', ')}) FROM STDIN`),
  );
  const { signal, what, onRows } = opts;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for await (const chunk of slice.reader.iterEncoded!()) {
      throwIfAborted(signal, what);
      onRows?.(countLines(chunk));
      yield chunk;
    }
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), stream);
  return (stream as unknown as { rowCount: number }).rowCount;
}
