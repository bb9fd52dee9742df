import { z } from 'zod';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ObjectStore } from '../contracts/object-store.js';
import type { ImportRequest, ImportResult, SinkEndpoint } from '../contracts/sink-endpoint.js';
import { FIELD_TYPES, type FieldType, type RecordSchema, type Row } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { listShapeOf, type ParquetArrayEncoding } from '../parquet/parquet-schema.js';
import { throwIfAborted } from '../util/abort.js';
import { loadOptionalPeer } from '../util/optional-peer.js';
import {
  type ObjectStorePointer,
  type ObjectStorePointerRun,
  pointerRuns,
  readJsonObject,
  switchPointer,
} from './object-store-pointer.js';
import { formatCsv, formatNdjson } from './row-formats.js';

export type {
  ObjectStorePointer,
  ObjectStorePointerHistoryChunk,
  ObjectStorePointerRun,
} from './object-store-pointer.js';

/** File formats of {@link ObjectStoreSink}. @public */
export type ObjectStoreSinkFormat = 'ndjson' | 'csv' | 'parquet';

/** Parquet options of {@link ObjectStoreSink}. @public */
export interface ObjectStoreSinkParquetOptions {
  /** Rows per row group (bounds the sink's memory). @defaultValue 10000 */
  rowGroupSize?: number;
  /** @defaultValue 'snappy' */
  compression?: 'snappy' | 'uncompressed';
  /** Column types; overrides the staged schema. Without either, types are inferred from the first row group. */
  schema?: RecordSchema;
  /**
   * How array columns (type `json` with `logical.element`: PostgreSQL `integer[]`, `text[]`, …) are written:
   * - `'list'`: a Parquet LIST of the element's type (DuckDB reads `INTEGER[]`, `DECIMAL(12,2)[]`), one nested LIST per
   *   `logical.dimensions` (else 1). A value the LIST cannot hold — other dimensions, ragged, a non-default lower
   *   bound (PostgreSQL array text) — is refused with `row_rejected` naming column, slice and row;
   * - `'json'`: JSON text (converted type JSON), the form of files written before LISTs; every value fits.
   *
   * Unset, each column keeps the encoding the unit's files already have: `_SUCCESS` records it per column, and the
   * newest run the `_CURRENT` pointer names decides (a run written before LISTs existed wrote every array as JSON).
   * A column new to the dataset — or every column of a new dataset — gets `'list'`. So appending to an existing
   * dataset never mixes JSON and LIST files for one column (readers that union files by name would fail); set
   * `'list'` with `replace` to move a dataset to LISTs.
   * @defaultValue `'list'` for new datasets and new columns; an existing column keeps its recorded encoding
   */
  arrays?: 'list' | 'json';
}

/** Options of {@link ObjectStoreSink}. @public */
export interface ObjectStoreSinkOptions {
  /** Where files go: any {@link ObjectStore} (filesystem, S3, memory). */
  store: ObjectStore;
  format: ObjectStoreSinkFormat;
  /** Key prefix of every object the sink writes. @defaultValue 'raw' */
  prefix?: string;
  parquet?: ObjectStoreSinkParquetOptions;
  /** Rows per batch read from staging. @defaultValue 10000 */
  chunkSize?: number;
  /**
   * Runs the `_CURRENT` pointer lists itself; past that, the older half of an `append` unit's runs moves to an
   * immutable history chunk, so the pointer stays small however many runs there were. @defaultValue 100
   */
  pointerMaxRuns?: number;
}

/** JSON config of the `object-store` sink (everything but the injected store). @public */
export type ObjectStoreSinkConfig = Omit<ObjectStoreSinkOptions, 'store'>;

const fieldSchema = z.object({
  name: z.string().min(1),
  type: z.enum(FIELD_TYPES as unknown as [FieldType, ...FieldType[]]),
  nullable: z.boolean(),
  logical: z.looseObject({}).optional(),
  native: z.object({ dialect: z.enum(['postgres', 'mysql']), type: z.string() }).optional(),
});

/** zod schema of {@link ObjectStoreSinkConfig}. @public */
export const objectStoreSinkConfigSchema: z.ZodType<ObjectStoreSinkConfig> = z
  .object({
    format: z.enum(['ndjson', 'csv', 'parquet'], { error: 'Expected `format` to be one of ndjson, csv, parquet' }),
    prefix: z
      .string()
      .min(1)
      .refine((p) => p.split('/').every((s) => s !== '' && s !== '.' && s !== '..') && !p.includes('\\'), {
        error: 'Expected `prefix` to be a relative, "/"-separated key prefix without empty, "." or ".." segments',
      })
      .optional(),
    parquet: z
      .object({
        rowGroupSize: z.number().int().positive().optional(),
        compression: z.enum(['snappy', 'uncompressed']).optional(),
        schema: z.object({ fields: z.array(fieldSchema), primaryKey: z.array(z.string()).optional() }).optional(),
        arrays: z.enum(['list', 'json'], { error: "Expected `parquet.arrays` to be 'list' or 'json'" }).optional(),
      })
      .strict()
      .optional(),
    chunkSize: z.number().int().positive().max(1_000_000).optional(),
    pointerMaxRuns: z.number().int().min(2).max(10_000).optional(),
  })
  .strict();

/** Descriptor of {@link ObjectStoreSink}: id `object-store`, family `object-store`. @public */
export const objectStoreSinkDescriptor: EndpointDescriptor<ObjectStoreSinkConfig> = {
  id: 'object-store',
  role: 'sink',
  family: 'object-store',
  title: 'Files in an object store (NDJSON, CSV, Parquet)',
  version: '1.0.0',
  capabilities: ['ingest.full', 'ingest.incremental'],
  config: objectStoreSinkConfigSchema,
};

const FORMATS: Record<ObjectStoreSinkFormat, { ext: string; contentType: string }> = {
  ndjson: { ext: 'ndjson', contentType: 'application/x-ndjson' },
  csv: { ext: 'csv', contentType: 'text/csv; charset=utf-8' },
  parquet: { ext: 'parquet', contentType: 'application/vnd.apache.parquet' },
};

/**
 * A raw sink: writes each staged slice as one file in any {@link ObjectStore}, as NDJSON, CSV or Parquet.
 *
 * Layout: `<prefix>/<unit>/<runId>/part-<slice>.<ext>` (the unit id percent-encoded into one key segment), then
 * `<prefix>/<unit>/<runId>/_SUCCESS` (JSON listing the files and row counts), then the pointer
 * `<prefix>/<unit>/_CURRENT` ({@link ObjectStorePointer}). Keys depend only on `(unit, runId, slice)`, so a
 * re-import of the same run overwrites its files instead of duplicating them.
 *
 * Readers follow `_CURRENT`: it is switched only after every file and `_SUCCESS` of the run exist, and a put is
 * atomic, so a reader sees the old runs or the new ones, never a mix. With `replace` the pointer names only the new
 * run and the unit's other run directories are deleted afterwards; with `append` the pointer lists the newest runs and
 * links immutable history chunks of the older ones ({@link ObjectStoreSink.currentRuns} lists them all). The pointer
 * write is fenced by the run's lease token: a paused old holder never drops a newer run from it.
 * `merge` is not supported (`unsupported`): files have no keys to merge on.
 *
 * Parquet is written by `@nucleus/ingestion/parquet`, imported only when `format` is `'parquet'`, streamed row
 * group by row group into the store, so memory is bounded by `parquet.rowGroupSize`.
 *
 * @example
 * ```ts
 * import { MemoryObjectStore, ObjectStoreSink } from '@nucleus/ingestion';
 * const sink = new ObjectStoreSink({ store: new MemoryObjectStore(), format: 'parquet', prefix: 'lake/raw' });
 * ```
 * @throws IngestError `config_invalid` listing every issue of malformed options.
 * @public
 */
export class ObjectStoreSink implements SinkEndpoint {
  readonly descriptor: EndpointDescriptor<ObjectStoreSinkConfig> = objectStoreSinkDescriptor;
  readonly #store: ObjectStore;
  readonly #config: ObjectStoreSinkConfig & { prefix: string };

  /**
   * Validate the options; nothing is written until the first import.
   * @throws IngestError `config_invalid` listing every issue.
   */
  constructor(options: ObjectStoreSinkOptions) {
    const { store, ...config } = (options ?? {}) as ObjectStoreSinkOptions;
    const parsed = objectStoreSinkConfigSchema.safeParse(config);
    const issues = parsed.success ? [] : [...parsed.error.issues];
    const storeOk =
      store != null && ['put', 'get', 'list', 'delete'].every((f) => typeof (store as any)[f] === 'function');
    if (!storeOk)
      issues.unshift({
        code: 'custom',
        path: ['store'],
        message: 'Expected `store` to be an ObjectStore',
        input: store,
      });
    if (issues.length > 0 || !parsed.success) throw configInvalid('Invalid ObjectStoreSink options', issues);
    this.#store = store;
    this.#config = { ...parsed.data, prefix: parsed.data.prefix ?? 'raw' };
  }

  /** Key of the unit's pointer object. */
  pointerKey(unitId: string): string {
    return `${this.#config.prefix}/${keySegment(unitId)}/_CURRENT`;
  }

  /**
   * Every run the unit's `_CURRENT` pointer names, oldest first, its history chunks included: the run directories
   * a consistent reader reads. Empty when the unit has no pointer yet.
   */
  async currentRuns(unitId: string): Promise<ObjectStorePointerRun[]> {
    const pointer = await readJsonObject<ObjectStorePointer>(this.#store, this.pointerKey(unitId));
    return pointer ? pointerRuns(this.#store, pointer) : [];
  }

  /**
   * Write every slice of the request as one file, then `_SUCCESS`, then switch the pointer.
   * The pointer write is fenced: it stores the run's fencing token and never overwrites a pointer written with a
   * higher one (`lease_lost`).
   * @throws IngestError `unsupported` for `merge`; `row_rejected` when a row does not fit the file's columns;
   * `dependency_missing` for `format: 'parquet'` without `hyparquet-writer` installed;
   * `sink_failed` when the store fails; `aborted` when `ctx.signal` fires (the pointer is left as it was).
   */
  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    if (req.disposition === 'merge') {
      throw new IngestError('unsupported', `ObjectStoreSink cannot merge (unit ${req.unitId}): use append or replace`, {
        details: { unitId: req.unitId, disposition: req.disposition },
      });
    }
    const { format, prefix } = this.#config;
    const { ext, contentType } = FORMATS[format];
    const unitDir = `${prefix}/${keySegment(req.unitId)}`;
    const runDir = `${unitDir}/${keySegment(ctx.runId)}`;
    const where = `unit ${req.unitId}, run ${ctx.runId}`;
    const files: Array<{ key: string; slice: number; rows: number }> = [];
    let rowsImported = 0;
    try {
      const arrays = format === 'parquet' ? await this.#arrayEncodings(req, ctx) : undefined;
      for (const slice of req.slices) {
        throwIfAborted(ctx.signal, `import of ${where}`);
        const key = `${runDir}/part-${String(slice.index).padStart(5, '0')}.${ext}`;
        const counter = { rows: 0 };
        const batches = counted(slice.reader.iterBatches(this.#config.chunkSize ?? 10_000), counter, ctx.signal);
        const body = sliceRejections(await this.#encode(batches, req.schema, arrays?.columns), slice.index, req, ctx);
        await this.#store.put(key, body, {
          contentType,
          metadata: { runid: ctx.runId, slice: String(slice.index) },
          signal: ctx.signal,
        });
        files.push({ key, slice: slice.index, rows: counter.rows });
        rowsImported += counter.rows;
      }
      await this.#removeStray(runDir, new Set(files.map((f) => f.key)));
      const at = new Date().toISOString();
      // the schema the run's files carry: after a schema change, files of earlier runs keep theirs
      const success = {
        runId: ctx.runId,
        unitId: req.unitId,
        format,
        rows: rowsImported,
        files,
        completedAt: at,
        ...(req.schema ? { schema: req.schema } : {}),
        // how each array column is encoded, the columns of earlier runs included: the next run keeps it
        ...(arrays ? { parquet: { arrays: arrays.record } } : {}),
      };
      await this.#store.put(`${runDir}/_SUCCESS`, json(success), {
        contentType: 'application/json',
        signal: ctx.signal,
      });
      const pointer = await switchPointer({
        store: this.#store,
        key: this.pointerKey(req.unitId),
        unitDir,
        unitId: req.unitId,
        format,
        append: req.disposition === 'append',
        run: { runId: ctx.runId, dir: runDir, rows: rowsImported, files: files.length, at },
        maxRuns: this.#config.pointerMaxRuns ?? 100,
        ctx,
      });
      if (req.disposition === 'replace') await this.#removeOtherRuns(unitDir, runDir, ctx);
      return {
        rowsImported,
        provenance: {
          bucket: this.#store.bucket,
          dir: runDir,
          files: files.map((f) => f.key),
          pointer: this.pointerKey(req.unitId),
          runs: pointer.runs.length,
        },
      };
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw IngestError.wrap(err, 'sink_failed', `ObjectStoreSink failed writing ${where}`, {
        unitId: req.unitId,
        runId: ctx.runId,
      });
    }
  }

  /**
   * The encoding of every array column of this run: `parquet.arrays` when set, else the one the newest run of the
   * unit's pointer recorded, else `'list'`; and the record for this run's `_SUCCESS` (earlier columns carried over).
   */
  async #arrayEncodings(
    req: ImportRequest,
    ctx: IngestionContext,
  ): Promise<{ columns: Record<string, ParquetArrayEncoding>; record: Record<string, ParquetArrayEncoding> }> {
    const schema = this.#config.parquet?.schema ?? req.schema;
    const arrays = (schema?.fields ?? []).filter((f) => listShapeOf(f) !== undefined).map((f) => f.name);
    const previous = await this.#recordedArrays(req.unitId, ctx);
    const asked = this.#config.parquet?.arrays;
    const columns: Record<string, ParquetArrayEncoding> = {};
    for (const name of arrays)
      columns[name] = asked ?? previous.columns[name] ?? (previous.legacy(name) ? 'json' : 'list');
    return { columns, record: { ...previous.columns, ...columns } };
  }

  /**
   * What the newest run of the unit's pointer recorded about its array columns. A Parquet run written before LISTs
   * existed recorded nothing and wrote every array as JSON: its array columns (every column, when it recorded no
   * schema) count as `'json'`.
   */
  async #recordedArrays(
    unitId: string,
    ctx: IngestionContext,
  ): Promise<{ columns: Record<string, ParquetArrayEncoding>; legacy: (column: string) => boolean }> {
    const none = { columns: {}, legacy: () => false };
    const pointer = await readJsonObject<ObjectStorePointer>(this.#store, this.pointerKey(unitId), ctx.signal);
    const last = pointer?.format === 'parquet' ? pointer.runs.at(-1) : undefined;
    if (!last) return none;
    const success = await readJsonObject<{ schema?: RecordSchema; parquet?: { arrays?: unknown } }>(
      this.#store,
      `${last.dir}/_SUCCESS`,
      ctx.signal,
    );
    const recorded = success?.parquet?.arrays;
    if (recorded && typeof recorded === 'object') {
      const columns: Record<string, ParquetArrayEncoding> = {};
      for (const [name, enc] of Object.entries(recorded)) if (enc === 'list' || enc === 'json') columns[name] = enc;
      return { columns, legacy: () => false };
    }
    const fields = success?.schema?.fields;
    if (!Array.isArray(fields)) return { columns: {}, legacy: () => true };
    const earlier = new Set(fields.filter((f) => f?.type === 'json').map((f) => f.name));
    return { columns: {}, legacy: (name) => earlier.has(name) };
  }

  async #encode(
    batches: AsyncIterable<Row[]>,
    staged: RecordSchema | undefined,
    arrays: Record<string, ParquetArrayEncoding> | undefined,
  ): Promise<AsyncIterable<Uint8Array>> {
    switch (this.#config.format) {
      case 'ndjson':
        return formatNdjson(batches);
      case 'csv':
        return formatCsv(batches, staged);
      case 'parquet': {
        const load = () => import('../parquet/index.js');
        const { encodeParquet } = await loadOptionalPeer(
          'hyparquet-writer',
          load,
          "ObjectStoreSink's format 'parquet'",
        );
        const p = this.#config.parquet ?? {};
        return encodeParquet(batches, {
          rowGroupSize: p.rowGroupSize,
          compression: p.compression,
          schema: p.schema ?? staged,
          ...(arrays ? { arrays } : {}),
        });
      }
    }
  }

  /** Files of an earlier attempt of this run that this attempt did not write (e.g. a slice count that changed). */
  async #removeStray(runDir: string, keep: Set<string>): Promise<void> {
    const stray: string[] = [];
    for await (const o of this.#store.list(`${runDir}/`))
      if (!keep.has(o.key) && !o.key.endsWith('/_SUCCESS')) stray.push(o.key);
    if (stray.length > 0) await this.#store.delete(stray);
  }

  /** After a `replace` switched the pointer: delete the unit's other run directories (best effort). */
  async #removeOtherRuns(unitDir: string, runDir: string, ctx: IngestionContext): Promise<void> {
    try {
      const old: string[] = [];
      for await (const o of this.#store.list(`${unitDir}/`)) {
        if (!o.key.startsWith(`${runDir}/`) && o.key !== `${unitDir}/_CURRENT`) old.push(o.key);
      }
      for (let i = 0; i < old.length; i += 1000) await this.#store.delete(old.slice(i, i + 1000));
    } catch (err) {
      ctx.logger.warn(`ObjectStoreSink: could not delete replaced runs under ${unitDir}: ${String(err)}`);
    }
  }
}

/** One key segment from any id: percent-encoded, so distinct ids never collide and `.`/`..` cannot escape. */
function keySegment(id: string): string {
  const s = encodeURIComponent(id);
  return s === '.' || s === '..' ? s.replace(/\./g, '%2E') : s;
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

/** A row the encoder refuses, named with its slice, unit and run (the encoder knows only the row and column). */
async function* sliceRejections(
  body: AsyncIterable<Uint8Array>,
  slice: number,
  req: ImportRequest,
  ctx: IngestionContext,
): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (err) {
    if (!IngestError.is(err, 'row_rejected')) throw err;
    throw new IngestError('row_rejected', `${err.message} (slice ${slice} of unit ${req.unitId}, run ${ctx.runId})`, {
      cause: err,
      details: { ...err.details, slice, unitId: req.unitId, runId: ctx.runId },
    });
  }
}

async function* counted(
  batches: AsyncIterable<Row[]>,
  counter: { rows: number },
  signal: AbortSignal,
): AsyncGenerator<Row[]> {
  for await (const batch of batches) {
    throwIfAborted(signal, 'object-store import');
    counter.rows += batch.length;
    yield batch;
  }
}
