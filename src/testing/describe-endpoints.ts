import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Disposition, ImportRequest, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { Json, RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { MemoryStagingProvider } from '../staging/memory-staging-provider.js';
import { testContext } from './context.js';

/** Options of {@link describeSourceEndpoint}. @public */
export interface DescribeSourceOptions {
  /** A unit with at least two batches of data. */
  unitId: string;
  /** Rows a full read must return (count). */
  expectedRows?: number;
  /** Called once after the suite (close pools, drop schemas). */
  teardown?: () => Promise<void> | void;
}

/**
 * The SourceEndpoint contract suite: descriptor shape, full reads, incremental reads strictly after the
 * checkpoint, planned slices that cover the unit exactly, cancellation within one batch, preview limits.
 *
 * @example
 * ```ts
 * import { MemorySource } from '@nucleus/ingestion/testing';
 * import { describeSourceEndpoint } from '@nucleus/ingestion/testing/vitest';
 * describeSourceEndpoint('memory', () => new MemorySource({ units: { u: { rows, cursorColumns: ['id'], batchSize: 10 } } }), { unitId: 'u' });
 * ```
 * @public
 */
export function describeSourceEndpoint(
  name: string,
  factory: () => SourceEndpoint<any> | Promise<SourceEndpoint<any>>,
  opts: DescribeSourceOptions,
): void {
  describe(`SourceEndpoint contract: ${name}`, () => {
    let source: SourceEndpoint<any>;
    beforeAll(async () => {
      source = await factory();
    });
    afterAll(async () => {
      await source?.close?.();
      await opts.teardown?.();
    });

    const readAll = async (mode: 'full' | 'incremental', checkpoint: Json | null) => {
      const batches: SourceBatch<any>[] = [];
      for await (const b of source.read(
        { unitId: opts.unitId, mode, checkpoint },
        testContext({ unitId: opts.unitId }),
      ))
        batches.push(b);
      return batches;
    };

    it('has a valid source descriptor', () => {
      const d = source.descriptor;
      expect(d.role).toBe('source');
      expect(typeof d.id).toBe('string');
      expect(Array.isArray(d.capabilities)).toBe(true);
      expect(typeof d.config?.safeParse).toBe('function');
    });

    it('full read yields batches of rows', async () => {
      const batches = await readAll('full', null);
      expect(batches.every((b) => Array.isArray(b.rows))).toBe(true);
      const rows = batches.flatMap((b) => b.rows);
      if (opts.expectedRows !== undefined) expect(rows).toHaveLength(opts.expectedRows);
      expect(rows.length).toBeGreaterThan(0);
    });

    it('incremental read from the last checkpoint returns nothing already read', async () => {
      if (!source.descriptor.capabilities.includes('ingest.incremental')) return;
      const batches = await readAll('incremental', null);
      const last = [...batches].reverse().find((b) => b.checkpoint !== undefined)?.checkpoint;
      expect(last).toBeDefined();
      const again = await readAll('incremental', last as Json);
      expect(again.flatMap((b) => b.rows)).toHaveLength(0);
    });

    it('planned slices together return every row exactly once', async () => {
      if (!source.plan) return;
      const ctx = testContext({ unitId: opts.unitId });
      const plan = await source.plan(
        { unitId: opts.unitId, mode: 'full', checkpoint: null, hints: { sliceMaxRows: 1 } },
        ctx,
      );
      if (!plan) return;
      let count = 0;
      for (const slice of plan.slices) {
        for await (const b of source.read({ unitId: opts.unitId, mode: 'full', checkpoint: null, slice }, ctx))
          count += b.rows.length;
      }
      const full = (await readAll('full', null)).reduce((n, b) => n + b.rows.length, 0);
      expect(count).toBe(full);
    });

    it('stops within one batch when the signal aborts', async () => {
      const ac = new AbortController();
      let batches = 0;
      const err = await (async () => {
        for await (const _ of source.read(
          { unitId: opts.unitId, mode: 'full', checkpoint: null },
          testContext({ signal: ac.signal, unitId: opts.unitId }),
        )) {
          batches++;
          ac.abort();
        }
      })().catch((e) => e);
      expect(batches).toBeLessThanOrEqual(2);
      if (batches >= 1 && err) expect(err).toBeInstanceOf(Error);
    });

    it('preview honours its limit', async () => {
      if (!source.preview) return;
      const { rows } = await source.preview({ unitId: opts.unitId, limit: 1 }, testContext({ unitId: opts.unitId }));
      expect(rows.length).toBeLessThanOrEqual(1);
    });
  });
}

/** Options of {@link describeSinkEndpoint}. @public */
export interface DescribeSinkOptions {
  unitId: string;
  /** Read the target back (order does not matter; rows are compared as sets by the primary key). */
  readBack: (unitId: string) => Promise<Row[]>;
  /** Rows to import; need a unique `id`. Defaults to a small table of every common type. */
  rows?: Row[];
  schema?: RecordSchema;
  /** Dispositions the sink supports. @defaultValue ['append', 'replace', 'merge'] */
  dispositions?: Disposition[];
  /** Normalise a read-back row before comparison (e.g. type differences of the target). */
  normalize?: (row: Row) => Row;
  /** Called once after the suite (close pools, drop schemas). */
  teardown?: () => Promise<void> | void;
}

/**
 * The SinkEndpoint contract suite: import of staged slices, idempotence per `(runId, slice)` (re-importing a
 * run adds nothing), and the dispositions the sink claims.
 *
 * @example
 * ```ts
 * import { MemorySink } from '@nucleus/ingestion/testing';
 * import { describeSinkEndpoint } from '@nucleus/ingestion/testing/vitest';
 * const sink = new MemorySink();
 * describeSinkEndpoint('memory', () => sink, { unitId: 'u', readBack: async (u) => sink.rows(u) });
 * ```
 * @public
 */
export function describeSinkEndpoint(
  name: string,
  factory: () => SinkEndpoint | Promise<SinkEndpoint>,
  opts: DescribeSinkOptions,
): void {
  describe(`SinkEndpoint contract: ${name}`, () => {
    let sink: SinkEndpoint;
    const staging = new MemoryStagingProvider();
    const schema: RecordSchema = opts.schema ?? {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'name', type: 'string', nullable: true },
        { name: 'amount', type: 'decimal', nullable: true },
        { name: 'active', type: 'boolean', nullable: true },
      ],
      primaryKey: ['id'],
    };
    const rows: Row[] =
      opts.rows ??
      Array.from({ length: 25 }, (_, i) => ({
        id: BigInt(i + 1),
        name: i % 5 === 0 ? null : `name ${i} 'q' "d" \\ ü`,
        amount: `${i}.50`,
        active: i % 2 === 0,
      }));
    const dispositions = opts.dispositions ?? ['append', 'replace', 'merge'];
    const norm = (r: Row) => (opts.normalize ? opts.normalize(r) : r);
    const sortById = (a: Row, b: Row) => (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0);

    beforeAll(async () => {
      sink = await factory();
    });
    afterAll(async () => {
      await sink?.close?.();
      await opts.teardown?.();
    });

    const stage = async (data: Row[], runId: string, slices = 3, provider = staging) => {
      const ctx = testContext({ unitId: opts.unitId, runId });
      const session = await provider.allocateSession(ctx);
      const per = Math.ceil(data.length / slices);
      for (let i = 0; i < slices; i++) {
        const w = session.writer({ slice: i, schema });
        await w.writeBatch(data.slice(i * per, (i + 1) * per));
        await w.close();
      }
      await session.seal();
      const desc = await session.describe();
      const req = (disposition: Disposition): ImportRequest => ({
        unitId: opts.unitId,
        reader: session.reader(),
        slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
        handles: [],
        schema,
        disposition,
        primaryKey: schema.primaryKey,
      });
      return { ctx, req };
    };

    it('has a valid sink descriptor', () => {
      expect(sink.descriptor.role).toBe('sink');
      expect(typeof sink.descriptor.config?.safeParse).toBe('function');
    });

    it('imports every staged row; re-importing the same run adds nothing', async () => {
      const first = dispositions.includes('replace') ? 'replace' : 'append';
      const { ctx, req } = await stage(rows, `contract-a-${Date.now()}`);
      const res = await sink.import(req(first), ctx);
      expect(res.rowsImported).toBe(rows.length);
      const again = await stage(rows, ctx.runId, 3, new MemoryStagingProvider());
      await sink.import(again.req(first), again.ctx);
      const back = (await opts.readBack(opts.unitId)).map(norm).sort(sortById);
      expect(back).toEqual([...rows].sort(sortById));
    });

    it('append adds a new run’s rows', async () => {
      if (!dispositions.includes('append')) return;
      const before = (await opts.readBack(opts.unitId)).length;
      const more = rows.map((r) => ({ ...r, id: BigInt(Number(r.id) + 1000) }));
      const { ctx, req } = await stage(more, `contract-b-${Date.now()}`, 2);
      await sink.import(req('append'), ctx);
      expect((await opts.readBack(opts.unitId)).length).toBe(before + more.length);
    });

    it('replace leaves exactly the new run’s rows', async () => {
      if (!dispositions.includes('replace')) return;
      const fresh = rows.slice(0, 7);
      const { ctx, req } = await stage(fresh, `contract-c-${Date.now()}`, 2);
      await sink.import(req('replace'), ctx);
      expect((await opts.readBack(opts.unitId)).map(norm).sort(sortById)).toEqual([...fresh].sort(sortById));
    });

    it('merge upserts on the primary key', async () => {
      if (!dispositions.includes('merge')) return;
      const base = (await opts.readBack(opts.unitId)).length;
      const changed: Row[] = [
        { ...rows[0], name: 'changed' },
        { ...rows[0], id: 999_999n, name: 'inserted' },
      ];
      const { ctx, req } = await stage(changed, `contract-d-${Date.now()}`, 1);
      await sink.import(req('merge'), ctx);
      const back = (await opts.readBack(opts.unitId)).map(norm);
      expect(back.length).toBe(base + 1);
      expect(back.find((r) => String(r.id) === String(rows[0].id))?.name).toBe('changed');
      expect(back.find((r) => String(r.id) === '999999')?.name).toBe('inserted');
    });

    it('fails with an IngestError rather than a bare error', async () => {
      const bad = await stage([{ id: 'not a number', name: {} as never }], `contract-e-${Date.now()}`, 1).then(
        ({ ctx, req }) =>
          sink.import({ ...req('append'), disposition: 'bogus' as Disposition }, ctx).then(
            () => undefined,
            (e) => e,
          ),
      );
      if (bad !== undefined) expect(IngestError.is(bad)).toBe(true);
    });
  });
}
