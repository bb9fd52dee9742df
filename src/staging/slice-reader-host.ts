import type { ObjectStore } from '../contracts/object-store.js';
import type { RecordCodec } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { sleep } from '../util/abort.js';
import type { StagingManifest, StagingManifestSlice } from './manifest.js';

/** What a slice reader needs from its session. @internal */
export interface SliceReaderHost {
  readonly sessionId: string;
  readonly runDir: string;
  readonly store: ObjectStore;
  /** The manifest as it is in the store now (validated). */
  loadManifest(signal?: AbortSignal): Promise<StagingManifest>;
  /** The codec a slice was written with. */
  codecFor(slice: StagingManifestSlice): RecordCodec;
}

/** How a read of one slice names it (`where`, `details`) and reports it damaged (`corrupt`). @internal */
export function sliceErrors(host: SliceReaderHost, slice: StagingManifestSlice) {
  const where = `slice ${slice.index} of staging session ${host.sessionId}`;
  const details = { sessionId: host.sessionId, slice: slice.index, key: slice.key };
  const corrupt = (why: string, cause?: unknown) =>
    new IngestError('staging_corrupt', `${where} is corrupt: ${why}`, { cause, details });
  return { where, details, corrupt };
}

/**
 * The bytes of a slice whose object exists with the manifest's size.
 * @throws IngestError `staging_corrupt` (missing, other size), `staging_failed` (I/O)
 * @internal
 */
export async function openSlice(
  host: SliceReaderHost,
  slice: StagingManifestSlice,
  signal: AbortSignal | undefined,
): Promise<AsyncIterator<Uint8Array>> {
  const { where, details, corrupt } = sliceErrors(host, slice);
  try {
    await assertSliceSize(host, slice, corrupt, signal);
    return (await host.store.get(slice.key, { signal }))[Symbol.asyncIterator]();
  } catch (err) {
    if (IngestError.is(err, 'not_found')) throw corrupt(`its object ${slice.key} is missing`, err);
    throw IngestError.wrap(err, 'staging_failed', `Could not open ${where}`, details);
  }
}

/** Close a slice's byte stream without waiting: after an abort its pending read may never settle. @internal */
export function closeInBackground(source: AsyncIterator<Uint8Array>): void {
  Promise.resolve()
    .then(() => source.return?.())
    .catch(() => {});
}

/** The slice object exists with the manifest's size (or `corrupt` is thrown). @internal */
export async function assertSliceSize(
  host: SliceReaderHost,
  slice: StagingManifestSlice,
  corrupt: (why: string) => IngestError,
  signal: AbortSignal | undefined,
): Promise<void> {
  let info = await host.store.head(slice.key);
  // Some stores (s3rver, eventually consistent gateways) briefly report a stale size right after a write:
  // look twice more before calling a size mismatch corruption.
  for (let attempt = 1; info && info.size !== slice.bytes && attempt < 3; attempt++) {
    await sleep(50 * attempt, signal);
    info = await host.store.head(slice.key);
  }
  if (!info) throw corrupt(`its object ${slice.key} is missing`);
  if (info.size !== slice.bytes) throw corrupt(`its object is ${info.size} bytes, the manifest says ${slice.bytes}`);
}
