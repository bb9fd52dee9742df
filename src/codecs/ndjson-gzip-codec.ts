import { type Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGunzip, createGzip } from 'node:zlib';
import { z } from 'zod';
import type { RecordCodec } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { parseCodecOptions } from './codec-options.js';
import { DEFAULT_MAX_LINE_BYTES, decodeNdjson, encodeNdjson } from './ndjson-codec.js';

/** Options of {@link ndjsonGzipCodec}. @public */
export interface NdjsonGzipCodecOptions {
  /** gzip level 1 (fastest) … 9 (smallest). @defaultValue 6 */
  level?: number;
  /** Reading stops with `staging_corrupt` once one object inflates past this many bytes (a gzip bomb). @defaultValue 1 GiB */
  maxDecompressedBytes?: number;
  /** A line longer than this is refused while reading (`row_rejected`). @defaultValue 64 MiB */
  maxLineBytes?: number;
}

const optionsSchema = z
  .object({
    level: z.number().int().min(1).max(9).optional(),
    maxDecompressedBytes: z.number().int().positive().optional(),
    maxLineBytes: z.number().int().positive().optional(),
  })
  .strict();

const DEFAULT_MAX_DECOMPRESSED = 1024 * 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;

/**
 * {@link ndjsonCodec} compressed with streaming gzip (`node:zlib`). Decompression is capped: an object that
 * inflates past `maxDecompressedBytes`, or holds a line past `maxLineBytes`, is an error long before memory
 * runs out; a truncated gzip stream is `staging_corrupt`.
 *
 * @example
 * ```ts
 * import { ndjsonGzipCodec, ObjectStoreStagingProvider } from '@nucleus/ingestion';
 * const staging = new ObjectStoreStagingProvider({ store, codec: ndjsonGzipCodec({ level: 1 }) });
 * ```
 * @throws IngestError `config_invalid` for bad options; decoding throws `staging_corrupt` (bad or truncated
 * gzip, over `maxDecompressedBytes`, malformed line) or `row_rejected` (line over `maxLineBytes`).
 * @public
 */
export function ndjsonGzipCodec(options: NdjsonGzipCodecOptions = {}): RecordCodec {
  const opts = parseCodecOptions(optionsSchema, options, 'ndjsonGzipCodec');
  const level = opts.level ?? 6;
  const maxOut = opts.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED;
  const maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  return {
    id: 'ndjson.gz',
    contentType: 'application/x-ndjson',
    extension: '.ndjson.gz',
    encode: (batches, schema) => gzipChunks(encodeNdjson(batches, schema, CHUNK_BYTES), level),
    decode: (bytes, schema) => decodeNdjson(gunzipChunks(bytes, maxOut), schema, maxLine),
  };
}

async function* gzipChunks(source: AsyncIterable<Uint8Array>, level: number): AsyncGenerator<Uint8Array> {
  const gz = createGzip({ level });
  yield* through(source, gz, (err) => IngestError.wrap(err, 'staging_failed', 'gzip compression failed'));
}

async function* gunzipChunks(source: AsyncIterable<Uint8Array>, maxOut: number): AsyncGenerator<Uint8Array> {
  // Z_SYNC_FLUSH on finish would accept a truncated stream; the default finishFlush reports it as an error.
  const gunzip = createGunzip({ finishFlush: constants.Z_FINISH });
  let total = 0;
  for await (const chunk of through(source, gunzip, (err) =>
    IngestError.is(err)
      ? err
      : new IngestError('staging_corrupt', `Invalid gzip data: ${(err as Error).message}`, { cause: err }),
  )) {
    total += chunk.byteLength;
    if (total > maxOut) {
      throw new IngestError('staging_corrupt', `gzip data inflates past maxDecompressedBytes (${maxOut} bytes)`, {
        details: { maxDecompressedBytes: maxOut },
      });
    }
    yield chunk;
  }
}

/**
 * Pump `source` through a zlib transform with backpressure, yielding its output. Stopping early destroys
 * the transform (and so the source iteration).
 */
async function* through(
  source: AsyncIterable<Uint8Array>,
  transform: Duplex,
  mapError: (err: unknown) => IngestError,
): AsyncGenerator<Uint8Array> {
  const input = Readable.from(source, { objectMode: false });
  let pumpError: unknown;
  const pump = pipeline(input, transform).catch((err) => {
    pumpError = err;
  });
  try {
    for await (const chunk of transform) yield chunk as Uint8Array;
  } catch (err) {
    throw mapError(pumpError ?? err);
  } finally {
    if (!transform.destroyed) transform.destroy();
    if (!input.destroyed) input.destroy();
    await pump;
  }
  if (pumpError !== undefined) throw mapError(pumpError);
}
