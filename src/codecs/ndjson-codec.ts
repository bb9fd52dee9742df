import { z } from 'zod';
import type { RecordCodec } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { parseCodecOptions } from './codec-options.js';
import { compileRowPlan, decodeRow, encodeRow, type RowPlan } from './value-encoding.js';

/** Options of {@link ndjsonCodec}. @public */
export interface NdjsonCodecOptions {
  /** A line (one encoded row) longer than this is refused while reading (`row_rejected`). @defaultValue 64 MiB */
  maxLineBytes?: number;
  /** Encoded text is emitted in chunks of about this many bytes. @defaultValue 1 MiB */
  chunkBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
const DEFAULT_CHUNK_BYTES = 1024 * 1024;

const optionsSchema = z
  .object({
    maxLineBytes: z.number().int().positive().optional(),
    chunkBytes: z.number().int().positive().optional(),
  })
  .strict();

/**
 * Newline-delimited JSON, one row per line, with type tags so every {@link Value} round-trips exactly:
 * `bigint`, `Date`, `Timestamp` (`$t`), `JsonText` (`$j`), `Uint8Array`, `NaN`/`±Infinity`/`-0`, nested objects and arrays, `null`, and keys such as
 * `__proto__` (always own data properties). Given a {@link RecordSchema}, `int64`, `timestamp` and `binary`
 * columns are written as bare strings instead of tags; decode with the same schema.
 *
 * @example
 * ```ts
 * import { ndjsonCodec, ObjectStoreStagingProvider, MemoryObjectStore } from '@nucleus/ingestion';
 * const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore(), codec: ndjsonCodec() });
 * ```
 * @throws IngestError `config_invalid` for bad options; decoding throws `staging_corrupt` for malformed lines
 * and `row_rejected` for a line over `maxLineBytes`.
 * @public
 */
export function ndjsonCodec(options: NdjsonCodecOptions = {}): RecordCodec {
  const opts = parseCodecOptions(optionsSchema, options, 'ndjsonCodec');
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  return {
    id: 'ndjson',
    contentType: 'application/x-ndjson',
    extension: '.ndjson',
    encode: (batches, schema) => encodeNdjson(batches, schema, chunkBytes),
    decode: (bytes, schema) => decodeNdjson(bytes, schema, maxLineBytes),
  };
}

/** Rows → UTF-8 NDJSON chunks of about `chunkBytes` (at least one row per chunk). */
export async function* encodeNdjson(
  batches: AsyncIterable<Row[]>,
  schema: RecordSchema | undefined,
  chunkBytes: number,
): AsyncGenerator<Uint8Array> {
  const plan = compileRowPlan(schema);
  let text = '';
  for await (const batch of batches) {
    for (let i = 0; i < batch.length; i++) {
      text += encodeRow(batch[i], plan) + '\n';
      if (text.length >= chunkBytes) {
        yield Buffer.from(text, 'utf8');
        text = '';
      }
    }
    // Flush per batch: the caller's batch is fully encoded before it asks for the next one.
    if (text.length > 0) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
}

/**
 * UTF-8 NDJSON chunks → batches of rows (one batch per input chunk). Lines split across chunks are joined;
 * a final line without newline is accepted; empty lines are skipped.
 */
export async function* decodeNdjson(
  bytes: AsyncIterable<Uint8Array>,
  schema: RecordSchema | undefined,
  maxLineBytes: number,
): AsyncGenerator<Row[]> {
  const plan = compileRowPlan(schema);
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lineNo = 0;
  for await (const chunk of bytes) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      carry.push(buf);
      carryBytes += buf.length;
      if (carryBytes > maxLineBytes) throw lineTooLong(lineNo + 1, maxLineBytes);
      continue;
    }
    let head = buf.subarray(0, last);
    if (carry.length > 0) {
      const firstNl = buf.indexOf(10);
      if (carryBytes + firstNl > maxLineBytes) throw lineTooLong(lineNo + 1, maxLineBytes);
      carry.push(head);
      head = Buffer.concat(carry);
      carry = [];
      carryBytes = 0;
    }
    const rest = buf.subarray(last + 1);
    if (rest.length > 0) {
      if (rest.length > maxLineBytes) throw lineTooLong(lineNo + 1, maxLineBytes);
      carry.push(rest);
      carryBytes = rest.length;
    }
    const rows: Row[] = [];
    lineNo = parseLines(head.toString('utf8'), plan, rows, lineNo, maxLineBytes);
    yield rows;
  }
  if (carry.length > 0) {
    const rows: Row[] = [];
    parseLines(Buffer.concat(carry).toString('utf8'), plan, rows, lineNo, maxLineBytes);
    if (rows.length > 0) yield rows;
  }
}

function parseLines(text: string, plan: RowPlan | undefined, out: Row[], lineNo: number, maxLineBytes: number): number {
  let start = 0;
  let n = lineNo;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    if (end > start) {
      // A line longer than the limit in characters is longer in bytes too.
      if (end - start > maxLineBytes) throw lineTooLong(n, maxLineBytes);
      const line = text.slice(start, end);
      try {
        out.push(decodeRow(line, plan));
      } catch (err) {
        throw IngestError.is(err)
          ? new IngestError(err.code, `Line ${n}: ${err.message}`, { cause: err, details: { line: n } })
          : new IngestError('staging_corrupt', `Line ${n} is not valid JSON: ${(err as Error).message}`, {
              cause: err,
              details: { line: n },
            });
      }
    }
    start = end + 1;
  }
  return n;
}

function lineTooLong(line: number, max: number): IngestError {
  return new IngestError('row_rejected', `Line ${line} is longer than maxLineBytes (${max} bytes)`, {
    details: { line, maxLineBytes: max },
  });
}
