import { loadOptionalPeer } from '../util/optional-peer.js';
import type { CopyTranscoderFactory, StagedToCsv } from './transcode.js';

/*
 * Which staging codecs the PostgreSQL source and sink transcode without row objects (docs/decisions/0008-transcoded-row-paths.md).
 * Loaded on first use: a codec's transcoder may need that codec's optional peer (apache-arrow).
 */

const EXPORTS: Record<string, () => Promise<CopyTranscoderFactory>> = {
  ndjson: async () => (await import('./copy-to-ndjson.js')).copyToNdjson,
  arrow: async () => (await arrowPeer(() => import('./copy-to-arrow.js'))).copyToArrow,
};

/** An import transcoder and the COPY format it writes (`csv`: `FORMAT csv`; `text`: COPY's text format). */
export interface ImportTranscoder {
  toCopy: StagedToCsv;
  format: 'csv' | 'text';
}

const IMPORTS: Record<string, () => Promise<ImportTranscoder>> = {
  ndjson: async () => ({ toCopy: (await import('./ndjson-to-copy.js')).ndjsonToCopyText, format: 'text' }),
  arrow: async () => ({
    toCopy: (await arrowPeer(() => import('./arrow-to-csv.js'))).arrowToCopyText,
    format: 'text',
  }),
  // the MySQL LOAD DATA text of `mySqlLoadDataCodec()` (MariaDB/MySQL → PostgreSQL)
  'mysql-tsv': async () => ({ toCopy: (await import('./load-data-to-copy.js')).loadDataToCopyText, format: 'text' }),
};

/** A transcoder module of the Arrow codec: without `apache-arrow` installed, `dependency_missing` (not retryable). */
function arrowPeer<T>(load: () => Promise<T>): Promise<T> {
  return loadOptionalPeer('apache-arrow', load, "The PostgreSQL transcoder of the staging codec 'arrow'");
}

/** The COPY text → codec transcoder of `codec`, or `undefined` when that codec is staged through rows. */
export function exportTranscoder(codec: string): (() => Promise<CopyTranscoderFactory>) | undefined {
  return Object.hasOwn(EXPORTS, codec) ? EXPORTS[codec] : undefined;
}

/** The staged bytes → COPY (CSV or text) transcoder of `codec`, or `undefined` when that codec is imported through rows. */
export function importTranscoder(codec: string | undefined): (() => Promise<ImportTranscoder>) | undefined {
  return codec !== undefined && Object.hasOwn(IMPORTS, codec) ? IMPORTS[codec] : undefined;
}
