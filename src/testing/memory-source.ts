import { z } from 'zod';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type { ExportPlan, ReadRequest, SliceSpec, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { Json, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';

/** One unit of a {@link MemorySource}. @public */
export interface MemorySourceUnit {
  /** The rows, or a function producing them (called on every read). */
  rows?: Row[] | (() => Iterable<Row> | AsyncIterable<Row>);
  /**
   * Incremental by this column (one): a run reads rows whose value is greater than the checkpoint's. The name every
   * source uses for its cursor (docs/concepts.md, "Cursors").
   */
  cursorColumns?: string[];
  /** @deprecated Use `cursorColumns: [field]`; removed in 0.3. */
  cursorField?: string;
  /** Rows per batch. @defaultValue 1000 */
  batchSize?: number;
  schema?: RecordSchema;
  /** With a number, `plan()` splits the unit into that many slices exported concurrently. */
  planSlices?: number;
}

/** Options of {@link MemorySource}. @public */
export interface MemorySourceOptions {
  units: Record<string, MemorySourceUnit>;
  /** Descriptor id. @defaultValue 'memory' */
  id?: string;
}

/** Checkpoint of a {@link MemorySource} unit. @public */
export type MemoryCheckpoint = { cursor: Json } & { [k: string]: Json };

const unitSchema = z
  .object({
    /** The rows, or a function producing them (called on every read). */
    rows: z
      .union([z.array(z.record(z.string(), z.any())), z.custom<() => Iterable<Row>>((v) => typeof v === 'function')])
      .optional(),
    cursorColumns: z
      .array(z.string().min(1))
      .length(1, { error: 'Expected `cursorColumns` to name one column (MemorySource compares one value)' })
      .optional(),
    cursorField: z.string().min(1).optional(),
    batchSize: z.number().int().positive().optional(),
    schema: z.any().optional(),
    planSlices: z.number().int().positive().optional(),
  })
  .refine((u) => !(u.cursorColumns && u.cursorField), { error: 'Expected `cursorColumns` or `cursorField`, not both' });

/** Config schema of the memory source. @public */
export const memorySourceConfig = z.object({ units: z.record(z.string(), unitSchema), id: z.string().optional() });

/** Descriptor of {@link MemorySource} (id `memory`). @public */
export const memorySourceDescriptor: EndpointDescriptor<MemorySourceOptions> = {
  id: 'memory',
  role: 'source',
  family: 'memory',
  title: 'In-memory rows',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: memorySourceConfig as unknown as z.ZodType<MemorySourceOptions>,
};

/**
 * A source over rows in memory (or a generator), incremental by a cursor field — for unit-testing pipelines.
 * Counts its calls (`reads`, `plans`) so tests can prove a resumed run did not read the source again.
 *
 * @example
 * ```ts
 * import { MemorySource } from '@nucleus/ingestion/testing';
 * const source = new MemorySource({ units: { users: { rows: [{ id: 1n, name: 'Ada' }], cursorColumns: ['id'] } } });
 * ```
 * @public
 */
export class MemorySource implements SourceEndpoint<MemoryCheckpoint> {
  readonly descriptor: EndpointDescriptor;
  /** Number of `read()` calls so far. */
  reads = 0;
  /** Number of `plan()` calls so far. */
  plans = 0;
  readonly #units: Record<string, MemorySourceUnit>;

  constructor(opts: MemorySourceOptions) {
    const parsed = memorySourceConfig.safeParse(opts);
    if (!parsed.success) {
      throw new IngestError(
        'config_invalid',
        `Invalid MemorySource options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    this.#units = opts.units;
    this.descriptor = { ...memorySourceDescriptor, id: opts.id ?? 'memory' };
    if (Object.values(opts.units).some((u) => u.planSlices)) {
      this.plan = this.#plan;
    }
  }

  /** Replace or add a unit's rows (simulates upstream changes between runs). */
  setRows(unitId: string, rows: Row[]): void {
    this.#unit(unitId).rows = rows;
  }

  plan?: (req: ReadRequest<MemoryCheckpoint>, ctx: IngestionContext) => Promise<ExportPlan<MemoryCheckpoint>>;

  async collectMetadata(): Promise<UnitMetadata[]> {
    return Object.entries(this.#units).map(([unitId, u]) => ({
      unitId,
      kind: 'memory',
      ...(u.schema ? { schema: u.schema } : {}),
      ...(Array.isArray(u.rows) ? { estimatedRows: u.rows.length } : {}),
      ...(cursorOf(u) ? { cursorColumns: [cursorOf(u)!] } : {}),
    }));
  }

  /** Whether the source has the unit. @throws IngestError `not_found` for an unknown unit */
  async checkUnit(unitId: string): Promise<void> {
    if (!Object.hasOwn(this.#units, unitId)) {
      throw new IngestError('not_found', `MemorySource has no unit "${unitId}"`, { details: { unitId } });
    }
  }

  async preview(req: { unitId: string; limit: number }): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    const rows: Row[] = [];
    for await (const row of this.#rows(req.unitId)) {
      if (rows.length >= req.limit) break;
      rows.push(row);
    }
    const u = this.#unit(req.unitId);
    return { rows, ...(u.schema ? { schema: u.schema } : {}) };
  }

  async *read(
    req: ReadRequest<MemoryCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<MemoryCheckpoint>> {
    this.reads++;
    const u = this.#unit(req.unitId);
    const size = u.batchSize ?? 1000;
    const cursor = cursorOf(u);
    const after = req.mode === 'incremental' && cursor && req.checkpoint ? (req.checkpoint.cursor as Value) : undefined;
    const bounds = req.slice?.bounds as { from: number; to: number; upper?: Json } | undefined;
    let max: Value | undefined = after;
    let batch: Row[] = [];
    let i = -1;
    for await (const row of this.#selected(u, req.unitId, after, bounds?.upper as Value | undefined)) {
      i++;
      if (bounds && (i < bounds.from || i >= bounds.to)) continue;
      throwIfAborted(ctx.signal, 'MemorySource read');
      batch.push(row);
      if (cursor) max = maxValue(max, row[cursor]);
      if (batch.length >= size) {
        yield { rows: batch, ...this.#cp(u, max), ...(u.schema ? { schema: u.schema } : {}) };
        batch = [];
      }
    }
    if (batch.length) yield { rows: batch, ...this.#cp(u, max), ...(u.schema ? { schema: u.schema } : {}) };
  }

  async #plan(req: ReadRequest<MemoryCheckpoint>): Promise<ExportPlan<MemoryCheckpoint>> {
    this.plans++;
    const u = this.#unit(req.unitId);
    const cursor = cursorOf(u);
    const after = req.mode === 'incremental' && cursor && req.checkpoint ? (req.checkpoint.cursor as Value) : undefined;
    let count = 0;
    let upper: Value | undefined = after;
    for await (const row of this.#selected(u, req.unitId, after, undefined)) {
      count++;
      if (cursor) upper = maxValue(upper, row[cursor]);
    }
    const n = Math.max(1, Math.min(u.planSlices ?? 1, count || 1));
    const per = Math.ceil(count / n);
    const slices: SliceSpec[] = Array.from({ length: n }, (_, index) => ({
      index,
      bounds: {
        from: index * per,
        to: Math.min(count, (index + 1) * per),
        ...(upper !== undefined ? { upper: toJson(upper) } : {}),
      },
    }));
    return {
      slices,
      checkpoint: upper === undefined ? (req.checkpoint ?? null) : { cursor: toJson(upper) },
      estimatedRows: count,
      ...(u.schema ? { schema: u.schema } : {}),
    };
  }

  #cp(u: MemorySourceUnit, max: Value | undefined): { checkpoint?: MemoryCheckpoint } {
    return cursorOf(u) && max !== undefined ? { checkpoint: { cursor: toJson(max) } } : {};
  }

  async *#selected(
    u: MemorySourceUnit,
    unitId: string,
    after: Value | undefined,
    upper: Value | undefined,
  ): AsyncIterable<Row> {
    const cursor = cursorOf(u);
    const rows: Row[] = [];
    for await (const row of this.#rows(unitId)) {
      if (cursor) {
        const v = row[cursor];
        if (after !== undefined && compare(v, fromJson(after, v)) <= 0) continue;
        if (upper !== undefined && compare(v, fromJson(upper, v)) > 0) continue;
        rows.push(row);
      } else yield row;
    }
    if (cursor) {
      rows.sort((a, b) => compare(a[cursor], b[cursor]));
      yield* rows;
    }
  }

  async *#rows(unitId: string): AsyncIterable<Row> {
    const u = this.#unit(unitId);
    const src = typeof u.rows === 'function' ? u.rows() : (u.rows ?? []);
    for await (const row of src as AsyncIterable<Row>) yield row;
  }

  #unit(unitId: string): MemorySourceUnit {
    const u = Object.hasOwn(this.#units, unitId) ? this.#units[unitId] : undefined;
    if (!u) throw new IngestError('source_failed', `MemorySource has no unit "${unitId}"`, { retryable: false });
    return u;
  }
}

/** The unit's cursor column: `cursorColumns[0]`, or the deprecated `cursorField`. */
function cursorOf(u: MemorySourceUnit): string | undefined {
  return u.cursorColumns?.[0] ?? u.cursorField;
}
function toJson(v: Value): Json {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Date) return { $date: v.toISOString() };
  return v as Json;
}
function fromJson(v: Value, like: Value): Value {
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    const o = v as Record<string, Value>;
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (typeof o.$date === 'string') return new Date(o.$date);
  }
  return typeof like === 'bigint' && typeof v === 'number' ? BigInt(v) : v;
}
function compare(a: Value, b: Value): number {
  const x = a instanceof Date ? a.getTime() : a;
  const y = b instanceof Date ? b.getTime() : b;
  if (x === y) return 0;
  if (x === null || x === undefined) return -1;
  if (y === null || y === undefined) return 1;
  return (x as number) < (y as number) ? -1 : 1;
}
function maxValue(a: Value | undefined, b: Value): Value {
  if (a === undefined) return b;
  const bb = fromJson(b, b);
  return compare(fromJson(a, bb), bb) >= 0 ? fromJson(a, bb) : bb;
}
