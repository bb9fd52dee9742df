import type { CopyTranscoderFactory, StagedToCsv } from './transcode.js';

/*
 * Which staging codecs the PostgreSQL source and sink transcode without row objects (docs/decisions/0008-transcoded-row-paths.md).
 * Loaded on first use: a codec's transcoder may need that codec's optional peer (apache-arrow).
 */

const EXPORTS: Record<string, () => Promise<CopyTranscoderFactory>> = {
  ndjson: async () => (await import('./copy-to-ndjson.js')).copyToNdjson,
};

const IMPORTS: Record<string, () => Promise<StagedToCsv>> = {
  ndjson: async () => (await import('./ndjson-to-csv.js')).ndjsonToCsv,
};

/** The COPY text → codec transcoder of `codec`, or `undefined` when that codec is staged through rows. */
export function exportTranscoder(codec: string): (() => Promise<CopyTranscoderFactory>) | undefined {
  return Object.hasOwn(EXPORTS, codec) ? EXPORTS[codec] : undefined;
}

/** The staged bytes → COPY CSV transcoder of `codec`, or `undefined` when that codec is imported through rows. */
export function importTranscoder(codec: string | undefined): (() => Promise<StagedToCsv>) | undefined {
  return codec !== undefined && Object.hasOwn(IMPORTS, codec) ? IMPORTS[codec] : undefined;
}
