import { describe, expect, it } from 'vitest';
import { IngestError, MemoryStagingProvider, type RecordSchema, type Row } from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('errs');

async function staged(rows: Row[][], schema?: RecordSchema) {
  const staging = new MemoryStagingProvider();
  const ctx = testContext({ unitId: 'x.t' });
  const session = await staging.allocateSession(ctx);
  for (const [i, slice] of rows.entries()) {
    const w = session.writer({ slice: i, ...(schema ? { schema } : {}) });
    await w.writeBatch(slice);
    await w.close();
  }
  await session.seal();
  const desc = await session.describe();
  return {
    ctx,
    req: (disposition: 'append' | 'merge' | 'replace' = 'append') => ({
      unitId: 'x.t',
      reader: session.reader(),
      slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
      handles: [],
      ...(schema ? { schema } : {}),
      disposition,
    }),
  };
}

describe('PostgresSink: rows that do not fit', () => {
  const cases: Array<[string, Row, string]> = [
    ['too long for varchar(5)', { id: 1n, code: 'toolong', qty: 1, note: 'x' }, 'code'],
    ['NOT NULL violated', { id: 2n, code: 'ok', qty: null, note: 'x' }, 'qty'],
    ['not an integer', { id: 3n, code: 'ok', qty: 'many' as never, note: 'x' }, 'qty'],
    ['NUL in text', { id: 4n, code: 'ok', qty: 1, note: 'a\u0000b' }, 'note'],
  ];
  for (const [what, bad, column] of cases) {
    it(`${what}: row_rejected naming the column and the slice; nothing of that slice lands`, async () => {
      const table = `t_${column}_${cases.findIndex((c) => c[0] === what)}`;
      await env.query(
        `CREATE TABLE "${env.schema}"."${table}" (id bigint PRIMARY KEY, code varchar(5), qty integer NOT NULL, note text)`,
      );
      const sink = new PostgresSink({
        pool: env.newPool(),
        tables: { 'x.t': `${env.schema}.${table}` },
        ledgerTable: `${env.schema}.ledger`,
        importConcurrency: 1,
      });
      const good: Row[] = Array.from({ length: 10 }, (_, i) => ({
        id: BigInt(100 + i),
        code: 'ok',
        qty: i,
        note: 'fine',
      }));
      const s = await staged([good, [...good.map((r) => ({ ...r, id: (r.id as bigint) + 100n })), bad]]);
      const err = await sink.import(s.req(), s.ctx).catch((e) => e);
      expect(IngestError.is(err, 'row_rejected')).toBe(true);
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(`"${column}"`);
      expect(err.message).toMatch(/slice 1\b/i);
      expect(err.details).toMatchObject({ column, slice: 1 });
      const { rows } = await env.query(
        `SELECT min(id)::int AS lo, max(id)::int AS hi, count(*)::int AS n FROM "${env.schema}"."${table}"`,
      );
      expect(rows[0]).toEqual({ lo: 100, hi: 109, n: 10 }); // slice 0 committed, slice 1 rolled back whole
    });
  }

  it('staged fields the target lacks are added as nullable columns (issue 21; was config_invalid)', async () => {
    await env.query(`CREATE TABLE "${env.schema}".narrow (id bigint)`);
    await env.query(`INSERT INTO "${env.schema}".narrow VALUES (0)`);
    const sink = new PostgresSink({
      pool: env.newPool(),
      tables: { 'x.t': `${env.schema}.narrow` },
      ledgerTable: `${env.schema}.ledger`,
    });
    const s = await staged([[{ id: 1n, extra: 'x' }]], {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'extra', type: 'string', nullable: false },
      ],
    });
    await sink.import(s.req(), s.ctx);
    const { rows } = await env.query(`SELECT id::int, extra FROM "${env.schema}".narrow ORDER BY id`);
    expect(rows).toEqual([
      { id: 0, extra: null },
      { id: 1, extra: 'x' },
    ]);
  });

  it('merge without any key is config_invalid', async () => {
    await env.query(`CREATE TABLE "${env.schema}".nokey (id bigint, v text)`);
    const sink = new PostgresSink({
      pool: env.newPool(),
      tables: { 'x.t': `${env.schema}.nokey` },
      ledgerTable: `${env.schema}.ledger`,
    });
    const s = await staged([[{ id: 1n, v: 'x' }]]);
    await expect(sink.import(s.req('merge'), s.ctx)).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('bad options are config_invalid listing every issue', () => {
    const err = (() => {
      try {
        new PostgresSink({ connectionString: 'postgres://x@h/db', pool: {} as never, importConcurrency: 0 });
      } catch (e) {
        return e as IngestError;
      }
    })();
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    expect(err!.message).toMatch(/importConcurrency/);
    expect(err!.message).toMatch(/pool/);
    expect(err!.message).toMatch(/not both/);
  });
});

describe('PostgresSource: metadata, preview, cancellation, errors', () => {
  it('collectMetadata lists tables and views with schemas, keys, estimates and cursor columns', async () => {
    await env.query(
      `CREATE TABLE "${env.schema}".meta (id int4 PRIMARY KEY, amount numeric(10,2) NOT NULL, at timestamptz)`,
    );
    await env.query(`INSERT INTO "${env.schema}".meta SELECT g, g, now() FROM generate_series(1, 500) g`);
    await env.query(`ANALYZE "${env.schema}".meta`);
    await env.query(`CREATE VIEW "${env.schema}".meta_view AS SELECT id FROM "${env.schema}".meta`);
    const source = new PostgresSource({
      pool: env.newPool(),
      schemas: [env.schema],
      units: { [`${env.schema}.meta`]: { cursorColumns: ['at'] } },
    });
    const units = await source.collectMetadata(testContext());
    const meta = units.find((u) => u.unitId === `${env.schema}.meta`)!;
    expect(meta).toMatchObject({
      kind: 'table',
      estimatedRows: 500,
      cursorColumns: ['at'],
      schema: {
        fields: [
          { name: 'id', type: 'int32', nullable: false },
          { name: 'amount', type: 'decimal', nullable: false },
          { name: 'at', type: 'timestamp', nullable: true },
        ],
        primaryKey: ['id'],
      },
    });
    expect(meta.capabilities).toContain('ingest.incremental');
    const view = units.find((u) => u.unitId === `${env.schema}.meta_view`)!;
    expect(view.kind).toBe('view');
    expect(view.capabilities).not.toContain('ingest.incremental');
    expect(units.every((u) => u.unitId.startsWith(`${env.schema}.`))).toBe(true);
  });

  it('a read stops within one batch when the signal aborts', async () => {
    const unitId = `${env.schema}.meta`;
    const ac = new AbortController();
    const source = new PostgresSource({ pool: env.newPool({ max: 1 }), batchSize: 50 });
    let batches = 0;
    const err = await (async () => {
      for await (const _ of source.read(
        { unitId, mode: 'full', checkpoint: null },
        testContext({ unitId, signal: ac.signal }),
      )) {
        batches++;
        ac.abort();
      }
    })().catch((e) => e);
    expect(IngestError.is(err, 'aborted')).toBe(true);
    expect(batches).toBe(1);
    // the connection went back to the pool in a usable state
    const { rows } = await source.preview({ unitId, limit: 3 }, testContext({ unitId }));
    expect(rows).toHaveLength(3);
  });

  it('unknown tables are not_found; unknown configured columns are config_invalid', async () => {
    const source = new PostgresSource({
      pool: env.newPool(),
      units: { [`${env.schema}.meta`]: { columns: ['id', 'nope'] } },
    });
    const read = async (unitId: string) => {
      for await (const _ of source.read({ unitId, mode: 'full', checkpoint: null }, testContext({ unitId })));
    };
    await expect(read(`${env.schema}.missing`)).rejects.toMatchObject({ code: 'not_found' });
    await expect(read(`${env.schema}.meta`)).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringContaining('"nope"'),
    });
    expect(() => new PostgresSource({ units: {} } as never)).toThrow(/connectionString/);
  });
});
