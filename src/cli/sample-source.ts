import { z } from 'zod';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type { ExportPlan, ReadRequest, SliceSpec, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { sleep, throwIfAborted } from '../util/abort.js';

const unitSchema = z
  .object({
    /** Rows the unit holds (ids 1…rows). */
    rows: z.number().int().nonnegative().max(1_000_000_000),
    /** Rows per batch. @defaultValue 1000 */
    batchSize: z.number().int().positive().max(1_000_000).optional(),
    /** Delay before each batch, to watch progress or try Ctrl-C. @defaultValue 0 */
    delayMs: z.number().int().nonnegative().max(60_000).optional(),
    /** Planned slices exported concurrently. @defaultValue enough for the run's `sliceMaxRows` */
    slices: z.number().int().positive().max(1000).optional(),
  })
  .strict();

const configSchema = z.object({ units: z.record(z.string(), unitSchema) }).strict();

/** Config of the `sample` source. @internal */
export type SampleSourceConfig = z.infer<typeof configSchema>;

/** Checkpoint of a `sample` unit: the last id read. @internal */
export type SampleCheckpoint = { lastId: number };

/** Descriptor of the CLI's built-in `sample` source. @internal */
export const sampleSourceDescriptor: EndpointDescriptor<SampleSourceConfig> = {
  id: 'sample',
  role: 'source',
  family: 'sample',
  title: 'Generated sample rows (for demos and trials)',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: configSchema,
};

const SCHEMA: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false },
    { name: 'name', type: 'string', nullable: false },
    { name: 'amount', type: 'float64', nullable: false },
    { name: 'created_at', type: 'timestamp', nullable: false },
  ],
  primaryKey: ['id'],
};

const EPOCH = Date.UTC(2024, 0, 1);

function row(id: number): Row {
  return {
    id: BigInt(id),
    name: `user-${id}`,
    amount: Math.round(((id * 7919) % 100_000) * 100) / 10_000,
    created_at: new Date(EPOCH + id * 60_000),
  };
}

/**
 * Deterministic generated rows — `id` (int64), `name`, `amount`, `created_at` — incremental by `id`, with a planner
 * (so progress has an estimate) and an optional delay per batch. For demos, trials and tests of the CLI.
 * @internal
 */
export class SampleSource implements SourceEndpoint<SampleCheckpoint> {
  readonly descriptor = sampleSourceDescriptor as EndpointDescriptor;
  constructor(private readonly config: SampleSourceConfig) {}

  async collectMetadata(): Promise<UnitMetadata[]> {
    return Object.entries(this.config.units).map(([unitId, u]) => ({
      unitId,
      schema: SCHEMA,
      estimatedRows: u.rows,
      cursorColumns: ['id'],
    }));
  }

  async preview(req: { unitId: string; limit: number }): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    const u = this.unit(req.unitId);
    return { rows: Array.from({ length: Math.min(req.limit, u.rows) }, (_, i) => row(i + 1)), schema: SCHEMA };
  }

  async plan(req: ReadRequest<SampleCheckpoint>): Promise<ExportPlan<SampleCheckpoint>> {
    const u = this.unit(req.unitId);
    const from = req.mode === 'incremental' && req.checkpoint ? req.checkpoint.lastId : 0;
    const total = Math.max(0, u.rows - from);
    const wanted = u.slices ?? Math.ceil(total / (req.hints?.sliceMaxRows ?? Math.max(1, total)));
    const n = Math.max(1, Math.min(wanted, total || 1, 1000));
    const per = Math.ceil(total / n);
    const slices: SliceSpec[] = Array.from({ length: n }, (_, index) => ({
      index,
      bounds: { from: from + index * per, to: Math.min(u.rows, from + (index + 1) * per) },
    }));
    return { slices, checkpoint: { lastId: Math.max(from, u.rows) }, schema: SCHEMA, estimatedRows: total };
  }

  async *read(
    req: ReadRequest<SampleCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<SampleCheckpoint>> {
    const u = this.unit(req.unitId);
    const bounds = req.slice?.bounds as { from: number; to: number } | undefined;
    const start = bounds?.from ?? (req.mode === 'incremental' && req.checkpoint ? req.checkpoint.lastId : 0);
    const end = bounds?.to ?? u.rows;
    const size = u.batchSize ?? 1000;
    for (let id = start; id < end; id += size) {
      if (u.delayMs) await sleep(u.delayMs, ctx.signal);
      throwIfAborted(ctx.signal, 'sample source read');
      const last = Math.min(end, id + size);
      yield {
        rows: Array.from({ length: last - id }, (_, i) => row(id + i + 1)),
        checkpoint: { lastId: last },
        schema: SCHEMA,
      };
    }
  }

  private unit(unitId: string) {
    const u = Object.hasOwn(this.config.units, unitId) ? this.config.units[unitId] : undefined;
    if (!u) {
      throw new IngestError(
        'config_invalid',
        `sample source has no unit "${unitId}" (units: ${Object.keys(this.config.units).join(', ')})`,
      );
    }
    return u;
  }
}
