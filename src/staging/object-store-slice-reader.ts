import { createHash } from 'node:crypto';
import type { ObjectInfo } from '../contracts/object-store.js';
import type { RecordReader } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { raceAbort, throwIfAborted } from '../util/abort.js';
import { readEncodedSlice } from './encoded-slice-reader.js';
import { parseSliceName } from './layout.js';
import type { StagingManifest, StagingManifestSlice } from './manifest.js';
import {
  assertSliceSize,
  closeInBackground,
  openSlice,
  type SliceReaderHost,
  sliceErrors,
} from './slice-reader-host.js';

/**
 * A verifying reader: every slice is checked against its manifest entry — size from `head()` before reading,
 * row count and sha256 while streaming — and its last rows are held back until the check passes, so a
 * consumer never sees the end of a damaged slice. Any mismatch is `staging_corrupt`. Batches hold exactly
 * `chunkSize` rows, except the last batch of each slice; a batch never mixes slices.
 */
export function objectStoreReader(host: SliceReaderHost, opts: { slice?: number; signal?: AbortSignal }): RecordReader {
  const reader: RecordReader = {
    iterBatches(chunkSize: number): AsyncIterable<Row[]> {
      return readBatches(host, opts, chunkSize);
    },
  };
  // pass-through: one slice's bytes as staged, verified (encoded-slice-reader.ts)
  const slice = opts.slice;
  if (slice !== undefined) reader.iterEncoded = () => readEncodedSlice(host, slice, opts.signal);
  return reader;
}

async function* readBatches(
  host: SliceReaderHost,
  opts: { slice?: number; signal?: AbortSignal },
  chunkSize: number,
): AsyncGenerator<Row[]> {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
    throw new IngestError(
      'config_invalid',
      `Expected \`chunkSize\` to be a positive integer, got ${String(chunkSize)}`,
      {
        details: { issues: ['chunkSize: must be a positive integer'] },
      },
    );
  }
  const signal = opts.signal;
  throwIfAborted(signal, `Reading staging session ${host.sessionId}`);
  const manifest = await host.loadManifest(signal);
  // A whole-session read refuses slice objects the manifest does not list. A one-slice read checks its own slice only:
  // an overlapped import (ADR 0018) reads a slice while the export still writes others, whose objects exist a moment
  // before their manifest entries; the sealed manifest is checked against the run before the checkpoint moves.
  if (opts.slice === undefined) await assertNoStrangers(host, manifest, signal);
  let slices = manifest.slices;
  if (opts.slice !== undefined) {
    const one = slices.find((s) => s.index === opts.slice);
    if (!one) {
      throw new IngestError('not_found', `Staging session ${host.sessionId} has no finished slice ${opts.slice}`, {
        details: { sessionId: host.sessionId, slice: opts.slice },
      });
    }
    slices = [one];
  }
  const chunks = new Rechunker(chunkSize);
  for (const slice of slices) {
    for await (const rows of verifiedSlice(host, slice, slice.schema ?? manifest.schema, signal)) {
      chunks.add(rows);
      // Strictly more than one chunk buffered: at least one row of this slice stays back until it is verified.
      while (chunks.size > chunkSize) yield chunks.take();
    }
    // Batches never mix slices: a sink committing per batch still commits whole, verified slices.
    while (chunks.size > 0) yield chunks.take();
  }
}

/**
 * Refuse slice objects the manifest does not list (tampering or a lost update); returns what the listing says of the
 * listed ones.
 */
async function assertNoStrangers(
  host: SliceReaderHost,
  manifest: StagingManifest,
  signal?: AbortSignal,
): Promise<Map<string, ObjectInfo>> {
  const known = new Set(manifest.slices.map((s) => s.key));
  const listed = new Map<string, ObjectInfo>();
  const dir = `${host.runDir}/`;
  try {
    for await (const info of host.store.list(dir)) {
      throwIfAborted(signal);
      const name = info.key.slice(dir.length);
      if (known.has(info.key)) listed.set(info.key, info);
      if (name.includes('/') || parseSliceName(name) === undefined || known.has(info.key)) continue;
      throw new IngestError(
        'staging_corrupt',
        `Staging session ${host.sessionId} holds ${info.key}, a slice object that is not in its manifest`,
        { details: { sessionId: host.sessionId, key: info.key } },
      );
    }
  } catch (err) {
    throw IngestError.wrap(err, 'staging_failed', `Could not list staging session ${host.sessionId}`, {
      sessionId: host.sessionId,
    });
  }
  return listed;
}

/** Etags compare without their quotes (stores differ in quoting them). */
const bareEtag = (etag: string) => etag.replace(/"/g, '');

/**
 * Whether the listing proves a slice object is the one that was uploaded, without reading it: a store whose etags are
 * content hashes (`contentEtags`, S3), an etag recorded at upload, and the listed object with that etag and size.
 */
function provenByListing(host: SliceReaderHost, slice: StagingManifestSlice, listed: ObjectInfo | undefined): boolean {
  return (
    host.store.contentEtags === true &&
    slice.etag !== undefined &&
    listed?.etag !== undefined &&
    listed.size === slice.bytes &&
    bareEtag(listed.etag) === bareEtag(slice.etag)
  );
}

async function* verifiedSlice(
  host: SliceReaderHost,
  slice: StagingManifestSlice,
  schema: RecordSchema | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<Row[]> {
  const { where, details, corrupt } = sliceErrors(host, slice);
  const codec = host.codecFor(slice);
  const source = await openSlice(host, slice, signal);

  const hash = createHash('sha256');
  let bytes = 0;
  let ended = false;
  let ioError: IngestError | undefined;
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    let r: IteratorResult<Uint8Array>;
    try {
      r = await raceAbort(source.next(), signal, `Reading ${where}`);
    } catch (err) {
      ioError = IngestError.is(err) ? err : IngestError.wrap(err, 'staging_failed', `Reading ${where} failed`, details);
      throw ioError;
    }
    if (r.done) {
      ended = true;
      return r;
    }
    hash.update(r.value);
    bytes += r.value.byteLength;
    if (bytes > slice.bytes)
      throw corrupt(`its object grew past the ${slice.bytes} bytes in the manifest while reading`);
    return r;
  };
  async function* tapped(): AsyncGenerator<Uint8Array> {
    while (true) {
      const r = await next();
      if (r.done) return;
      yield r.value;
    }
  }

  let rows = 0;
  try {
    for await (const batch of codec.decode(tapped(), schema)) {
      throwIfAborted(signal, `Reading ${where}`);
      rows += batch.length;
      if (rows > slice.rows) throw corrupt(`it holds more than the ${slice.rows} rows in the manifest`);
      if (batch.length > 0) yield batch;
    }
    // A decoder may stop before the end of its input (e.g. at an end-of-stream marker): hash the rest too.
    while (!ended) await next();
  } catch (err) {
    if (err === ioError || IngestError.is(err, 'aborted')) throw err;
    if (IngestError.is(err, 'staging_corrupt') && err.details.sessionId === host.sessionId) throw err;
    throw corrupt(`it cannot be decoded as ${codec.id} (${err instanceof Error ? err.message : String(err)})`, err);
  } finally {
    if (!ended) closeInBackground(source);
  }
  if (bytes !== slice.bytes) throw corrupt(`${bytes} bytes were read, the manifest says ${slice.bytes}`);
  const sha256 = hash.digest('hex');
  if (sha256 !== slice.sha256) throw corrupt(`its sha256 is ${sha256}, the manifest says ${slice.sha256}`);
  if (rows !== slice.rows) throw corrupt(`it holds ${rows} rows, the manifest says ${slice.rows}`);
}

/** Cuts a stream of row arrays into chunks of exactly `size` rows. */
class Rechunker {
  readonly #chunk: number;
  #rows: Row[] = [];
  #at = 0;

  constructor(chunk: number) {
    this.#chunk = chunk;
  }

  get size(): number {
    return this.#rows.length - this.#at;
  }

  add(rows: Row[]): void {
    if (this.#at > 0 && this.#at >= this.#rows.length / 2) {
      this.#rows = this.#rows.slice(this.#at);
      this.#at = 0;
    }
    for (let i = 0; i < rows.length; i++) this.#rows.push(rows[i]);
  }

  take(): Row[] {
    const end = Math.min(this.#at + this.#chunk, this.#rows.length);
    const out = this.#rows.slice(this.#at, end);
    this.#at = end;
    if (this.#at === this.#rows.length) {
      this.#rows = [];
      this.#at = 0;
    }
    return out;
  }
}

/**
 * Check a whole session without decoding it: no stranger slice objects, and every manifest slice present with
 * its recorded size and sha256. Throws `staging_corrupt` naming the first damaged slice.
 */
export async function verifySession(host: SliceReaderHost, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal, `Verifying staging session ${host.sessionId}`);
  const manifest = await host.loadManifest(signal);
  const listed = await assertNoStrangers(host, manifest, signal);
  for (const slice of manifest.slices) {
    // S3: the object with the uploaded etag and size holds the uploaded bytes; the import's own read still checks
    // sha256, bytes and rows as it streams (docs/decisions/0008-transcoded-row-paths.md, "one read per S3 slice")
    if (provenByListing(host, slice, listed.get(slice.key))) continue;
    const { where, details, corrupt } = sliceErrors(host, slice);
    await assertSliceSize(host, slice, corrupt, signal);
    const hash = createHash('sha256');
    let bytes = 0;
    // Codecs with a row counter (NDJSON, pg-copy: one newline per row) are counted without decoding; others decode.
    const counter = host.codecFor(slice).rowCounter?.();
    try {
      for await (const chunk of await host.store.get(slice.key, { signal })) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        counter?.push(chunk);
      }
    } catch (err) {
      if (IngestError.is(err, 'not_found')) throw corrupt(`its object ${slice.key} is missing`, err);
      throw IngestError.wrap(err, 'staging_failed', `Could not read ${where}`, details);
    }
    if (bytes !== slice.bytes) throw corrupt(`read ${bytes} bytes, the manifest says ${slice.bytes}`);
    const sha256 = hash.digest('hex');
    if (sha256 !== slice.sha256) throw corrupt(`its sha256 is ${sha256}, the manifest says ${slice.sha256}`);
    let rows = 0;
    if (counter) {
      try {
        rows = counter.end();
      } catch (err) {
        throw corrupt(`it is not whole rows of ${slice.codec} (${(err as Error).message})`, err);
      }
    } else {
      for await (const batch of verifiedSlice(host, slice, slice.schema ?? manifest.schema, signal))
        rows += batch.length;
    }
    if (rows !== slice.rows) throw corrupt(`it holds ${rows} rows, the manifest says ${slice.rows}`);
  }
}
