import { z } from 'zod';
import type { RecordCodec } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { parseCodecOptions } from './codec-options.js';
import { newlineRowCounter } from './newline-row-counter.js';
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
    // one newline per row (JSON text never holds a raw newline): counted without decoding, so staged bytes can be
    // taken unchanged (RecordWriter.writeEncoded) and read unchanged (RecordReader.iterEncoded)
    rowCounter: () => newlineRowCounter('NDJSON'),
    rowsAreLines: true,
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
  let lineNo = 0;
  for await (const text of ndjsonBlocks(bytes, maxLineBytes)) {
    const rows: Row[] = [];
    lineNo = forEachLine(text, lineNo, maxLineBytes, (line, n) => {
      rows.push(decodeLine(line, plan, n));
    });
    if (rows.length > 0) yield rows;
  }
}

/**
 * UTF-8 NDJSON chunks → text blocks of whole lines (the newline after the block's last line removed; a final line
 * without newline is a block of its own). A line longer than `maxLineBytes` fails with `row_rejected`.
 * @internal
 */
export async function* ndjsonBlocks(bytes: AsyncIterable<Uint8Array>, maxLineBytes: number): AsyncGenerator<string> {
  for await (const block of ndjsonByteBlocks(bytes, maxLineBytes)) yield block.toString('utf8');
}

/**
 * {@link ndjsonBlocks} as bytes: blocks of whole lines (the newline after the block's last line removed), not decoded.
 * @internal
 */
export async function* ndjsonByteBlocks(
  bytes: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
): AsyncGenerator<Buffer> {
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lines = 0;
  for await (const chunk of bytes) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      carry.push(buf);
      carryBytes += buf.length;
      if (carryBytes > maxLineBytes) throw lineTooLong(lines + 1, maxLineBytes);
      continue;
    }
    let head: Buffer | undefined = buf.subarray(0, last);
    if (carry.length > 0) {
      // the line that spans chunks is joined alone and is a block of its own: joining it with the whole chunk copied
      // every staged byte once more
      const firstNl = buf.indexOf(10);
      if (carryBytes + firstNl > maxLineBytes) throw lineTooLong(lines + 1, maxLineBytes);
      carry.push(buf.subarray(0, firstNl));
      const line = Buffer.concat(carry, carryBytes + firstNl);
      carry = [];
      carryBytes = 0;
      lines++;
      yield line;
      head = firstNl < last ? buf.subarray(firstNl + 1, last) : undefined;
    }
    const rest = buf.subarray(last + 1);
    if (head) {
      for (let i = head.indexOf(10); i !== -1; i = head.indexOf(10, i + 1)) lines++;
      lines++;
    }
    if (rest.length > 0) {
      if (rest.length > maxLineBytes) throw lineTooLong(lines + 1, maxLineBytes);
      carry.push(rest);
      carryBytes = rest.length;
    }
    if (!head) continue;
    // in blocks of at most BLOCK_BYTES where lines allow: a longer string is born in V8's old space, and the garbage
    // of a long run there is what grew the peak RSS (docs/decisions/0008-transcoded-row-paths.md)
    let from = 0;
    while (head.length - from > BLOCK_BYTES) {
      const nl = head.lastIndexOf(10, from + BLOCK_BYTES);
      if (nl < from) break;
      yield head.subarray(from, nl);
      from = nl + 1;
    }
    yield head.subarray(from);
  }
  if (carry.length > 0) yield Buffer.concat(carry);
}

/** Bytes handed out by {@link ndjsonByteBlocks} at once, where lines allow. */
const BLOCK_BYTES = 64 * 1024;

/**
 * Call `fn` for every non-empty line of a block from {@link ndjsonBlocks}, with its 1-based line number (counting
 * from `lineNo`, the lines before the block). Returns the line number of the block's last line.
 * @internal
 */
export function forEachLine(
  text: string,
  lineNo: number,
  maxLineBytes: number,
  fn: (line: string, n: number) => void,
): number {
  let start = 0;
  let n = lineNo;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    if (end > start) {
      // A line longer than the limit in characters is longer in bytes too.
      if (end - start > maxLineBytes) throw lineTooLong(n, maxLineBytes);
      fn(text.slice(start, end), n);
    }
    start = end + 1;
  }
  return n;
}

/**
 * Decode line `n` of a slice with the codec's plan; failures are `staging_corrupt` (or the decoder's own
 * IngestError) naming the line.
 * @internal
 */
export function decodeLine(line: string, plan: RowPlan | undefined, n: number): Row {
  try {
    return decodeRow(line, plan);
  } catch (err) {
    throw IngestError.is(err)
      ? new IngestError(err.code, `Line ${n}: ${err.message}`, { cause: err, details: { line: n } })
      : new IngestError('staging_corrupt', `Line ${n} is not valid JSON: ${(err as Error).message}`, {
          cause: err,
          details: { line: n },
        });
  }
}

/** `row_rejected` for line `line` longer than `max` bytes. @internal */
export function lineTooLong(line: number, max: number): IngestError {
  return new IngestError('row_rejected', `Line ${line} is longer than maxLineBytes (${max} bytes)`, {
    details: { line, maxLineBytes: max },
  });
}
