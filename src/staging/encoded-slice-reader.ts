import { createHash } from 'node:crypto';
import { IngestError } from '../errors/ingest-error.js';
import { raceAbort, throwIfAborted } from '../util/abort.js';
import { closeInBackground, openSlice, type SliceReaderHost, sliceErrors } from './slice-reader-host.js';

/**
 * Pass-through read of one finished slice: its bytes exactly as staged, verified against the manifest — size
 * before reading, sha256, byte count and row count (the codec's row counter, no decoding) while reading — with the
 * last chunk held back until every check passed, so a consumer (a COPY, say) never receives the end of a damaged
 * slice: it gets `staging_corrupt` instead and can roll back.
 * @throws IngestError `staging_corrupt`, `staging_failed` (I/O, a codec without a row counter), `not_found`, `aborted`
 */
export async function* readEncodedSlice(
  host: SliceReaderHost,
  index: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  throwIfAborted(signal, `Reading staging session ${host.sessionId}`);
  const manifest = await host.loadManifest(signal);
  const slice = manifest.slices.find((s) => s.index === index);
  if (!slice) {
    throw new IngestError('not_found', `Staging session ${host.sessionId} has no finished slice ${index}`, {
      details: { sessionId: host.sessionId, slice: index },
    });
  }
  const { where, details, corrupt } = sliceErrors(host, slice);
  const codec = host.codecFor(slice);
  if (!codec.rowCounter) {
    throw new IngestError('staging_failed', `${where} cannot be read as bytes: codec ${codec.id} has no row counter`, {
      retryable: false,
      details,
    });
  }
  const counter = codec.rowCounter();
  const source = await openSlice(host, slice, signal);
  const hash = createHash('sha256');
  let bytes = 0;
  let held: Uint8Array | undefined;
  let ended = false;
  try {
    while (true) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await raceAbort(source.next(), signal, `Reading ${where}`);
      } catch (err) {
        throw IngestError.is(err) ? err : IngestError.wrap(err, 'staging_failed', `Reading ${where} failed`, details);
      }
      if (r.done) {
        ended = true;
        break;
      }
      const chunk = r.value;
      hash.update(chunk);
      counter.push(chunk);
      bytes += chunk.byteLength;
      if (bytes > slice.bytes)
        throw corrupt(`its object grew past the ${slice.bytes} bytes in the manifest while reading`);
      if (held) yield held;
      held = chunk;
    }
  } finally {
    if (!ended) closeInBackground(source);
  }
  if (bytes !== slice.bytes) throw corrupt(`${bytes} bytes were read, the manifest says ${slice.bytes}`);
  const sha256 = hash.digest('hex');
  if (sha256 !== slice.sha256) throw corrupt(`its sha256 is ${sha256}, the manifest says ${slice.sha256}`);
  let rows: number;
  try {
    rows = counter.end();
  } catch (err) {
    throw corrupt(`it is not whole rows of ${codec.id} (${(err as Error).message})`, err);
  }
  if (rows !== slice.rows) throw corrupt(`it holds ${rows} rows, the manifest says ${slice.rows}`);
  if (held) yield held;
}
