/**
 * Boundary rules of MySqlSource's incremental reads (docs/mysql.md), zero dates, exact cursor types, rejected rows,
 * connection strings and a pool of one.
 */
import { describe, expect, it } from 'vitest';
import { IngestError, MemoryKvStore, MemoryStagingProvider, type Row, runUnit } from '../../src/index.js';
import { MySqlSink, MySqlSource } from '../../src/mysql/index.js';
import { MemorySink, testContext } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { stageInMemory } from '../helpers/staged.js';

const env = useMySql('inc');

/** A unit's runs share one KvStore and one sink; each call returns the ids the run exported. */
function runner(table: string, cursorColumns: string[], opts: { primaryKey?: string[]; sliceMaxRows?: number } = {}) {
  const kv = new MemoryKvStore();
  const unitId = `${env.database}.${table}`;
  let n = 0;
  return async (): Promise<string[]> => {
    const sink = new MemorySink();
    const source = new MySqlSource({
      pool: env.newPool({ connectionLimit: 2 }),
      units: { [unitId]: { cursorColumns, ...(opts.primaryKey ? { primaryKey: opts.primaryKey } : {}) } },
    });
    await runUnit({
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { vendor: 'mysql', endpointId: 'inc', unitId, sinkId: 'mem' },
      mode: 'incremental',
      runId: `${table}-run-${++n}`,
      policy: { sliceMaxRows: opts.sliceMaxRows ?? 1000, chunkSize: 2 },
    });
    await source.close();
    return sink.rows(unitId).map((r: Row) => String(r.id));
  };
}

describe('MySqlSource incremental boundaries', () => {
  it('a DATE cursor: late rows tying with the last cursor value are read, whatever their key; the next runs read only new rows', async () => {
    await env.query('CREATE TABLE d (id INT PRIMARY KEY, d DATE NOT NULL)');
    await env.query("INSERT INTO d VALUES (1, '2024-01-01'), (2, '2024-01-02'), (3, '2024-01-02')");
    const run = runner('d', ['d']);
    expect((await run()).sort()).toEqual(['1', '2', '3']);
    await env.query("INSERT INTO d VALUES (4, '2024-01-02')");
    expect(await run()).toEqual(['4']);
    await env.query("INSERT INTO d VALUES (5, '2024-01-03'), (6, '2024-01-02')");
    expect((await run()).sort()).toEqual(['5', '6']);
    expect(await run()).toEqual([]);
    // a late tie whose key sorts before every key read at that value is read too (boundary dedupe, ADR 0005)
    await env.query("INSERT INTO d VALUES (0, '2024-01-03')");
    expect(await run()).toEqual(['0']);
    expect(await run()).toEqual([]);
  });

  it('planned slices of an incremental window cover it exactly once (tie-breaker windows, primary-key ranges)', async () => {
    await env.query('CREATE TABLE s (id BIGINT PRIMARY KEY, c DATE NOT NULL)');
    await env.query("INSERT INTO s SELECT seq, DATE('2024-01-01') + INTERVAL (seq DIV 10) DAY FROM seq_1_to_95");
    const run = runner('s', ['c'], { sliceMaxRows: 10 });
    const first = await run();
    expect(first.length).toBe(95);
    expect(new Set(first).size).toBe(95);
    await env.query("INSERT INTO s SELECT seq, DATE('2024-01-10') FROM seq_96_to_120");
    const second = await run();
    expect(second.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => 96 + i));
  });

  it('DATETIME(6) and TIMESTAMP(6) cursors keep microseconds: rows 1 µs apart are neither lost nor read twice', async () => {
    await env.query('CREATE TABLE t6 (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, ts TIMESTAMP(6) NULL)');
    await env.query(
      "INSERT INTO t6 VALUES (1, '2024-01-01 00:00:00.000001', NULL), (2, '2024-01-01 00:00:00.000002', NULL)",
    );
    const run = runner('t6', ['at']);
    expect((await run()).sort()).toEqual(['1', '2']);
    await env.query(
      "INSERT INTO t6 VALUES (3, '2024-01-01 00:00:00.000003', NULL), (0, '2024-01-01 00:00:00.000001', NULL)",
    );
    expect(await run()).toEqual(['3']);
    await env.query("UPDATE t6 SET ts = '2024-05-05 05:05:05.000005'");
    await env.query("INSERT INTO t6 VALUES (10, '2000-01-01', '2024-05-05 05:05:05.000006')");
    const byTs = runner('t6', ['ts']);
    expect((await byTs()).sort()).toEqual(['0', '1', '10', '2', '3']);
    await env.query("INSERT INTO t6 VALUES (11, '2000-01-01', '2024-05-05 05:05:05.000007')");
    expect(await byTs()).toEqual(['11']);
  });

  it('BIGINT UNSIGNED above 2^63 and DECIMAL(65,30) cursors compare exactly (never through DOUBLE)', async () => {
    await env.query('CREATE TABLE big (id INT PRIMARY KEY, u BIGINT UNSIGNED NOT NULL, m DECIMAL(65,30) NOT NULL)');
    await env.query(
      "INSERT INTO big VALUES (1, 9223372036854775809, '1.000000000000000000000000000001'), (2, 18446744073709551614, '1.000000000000000000000000000002')",
    );
    const byU = runner('big', ['u']);
    const byM = runner('big', ['m']);
    expect((await byU()).sort()).toEqual(['1', '2']);
    expect((await byM()).sort()).toEqual(['1', '2']);
    await env.query("INSERT INTO big VALUES (3, 18446744073709551615, '1.000000000000000000000000000003')");
    expect(await byU()).toEqual(['3']);
    expect(await byM()).toEqual(['3']);
  });

  it('NULL cursor values are read once each (by fingerprint): NULL rows written later are read, again only when they change', async () => {
    await env.query('CREATE TABLE n (id INT PRIMARY KEY, c INT NULL, v INT NULL)');
    await env.query('INSERT INTO n VALUES (1, NULL, 0), (2, 5, 0), (3, NULL, 0)');
    const run = runner('n', ['c']);
    expect((await run()).sort()).toEqual(['1', '2', '3']);
    await env.query('INSERT INTO n VALUES (4, NULL, 0), (5, 6, 0)');
    expect((await run()).sort()).toEqual(['4', '5']);
    expect(await run()).toEqual([]);
    await env.query('UPDATE n SET v = 1 WHERE id = 3');
    expect(await run()).toEqual(['3']);
  });

  it("zero dates: read as null by default (fields declared nullable); zeroDates: 'error' fails naming the column", async () => {
    await env.query('CREATE TABLE z (id INT PRIMARY KEY, d DATE NOT NULL, dt DATETIME(6) NOT NULL)');
    // legacy data: written without NO_ZERO_DATE / NO_ZERO_IN_DATE
    const conn = await env.pool.getConnection();
    await conn.query("SET SESSION sql_mode = ''");
    await conn.query(
      "INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2024-00-10', '2024-01-01 00:00:00')",
    );
    conn.release();
    const unitId = `${env.database}.z`;
    const lenient = new MySqlSource({ pool: env.newPool() });
    const { rows, schema } = await lenient.preview({ unitId, limit: 10 }, testContext({ unitId }));
    expect(rows.map((r) => [r.id, r.d, r.dt === null ? null : 'ts'])).toEqual([
      [1, null, null],
      [2, null, 'ts'],
    ]);
    expect(schema!.fields.find((f) => f.name === 'd')!.nullable).toBe(true);
    const strict = new MySqlSource({ pool: env.newPool(), zeroDates: 'error' });
    const err = await strict.preview({ unitId, limit: 10 }, testContext({ unitId })).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    expect(err.message).toContain('"d"');
    expect(err.retryable).toBe(false);
    // the LOAD DATA text pass-through applies the same policy: NULL (\N) by default, source_failed with 'error'
    const ctx = testContext({ unitId });
    const slice = {
      index: 0,
      bounds: (await lenient.plan({ unitId, mode: 'full', checkpoint: null }, ctx)).slices[0].bounds,
    };
    const chunks: Buffer[] = [];
    for await (const b of lenient.readEncoded('mysql-tsv', { unitId, mode: 'full', checkpoint: null, slice }, ctx)!)
      chunks.push(Buffer.from(b.bytes));
    expect(Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean).sort()).toEqual([
      '1\t\\N\t\\N',
      '2\t\\N\t2024-01-01 00:00:00.000000',
    ]);
    const failed = await (async () => {
      for await (const _ of strict.readEncoded('mysql-tsv', { unitId, mode: 'full', checkpoint: null, slice }, ctx)!);
    })().catch((e) => e);
    expect(IngestError.is(failed, 'source_failed')).toBe(true);
    expect(failed.message).toContain('zero date');
  });
});

describe('MySqlSink boundaries', () => {
  const stageAndImport = async (sink: MySqlSink, unitId: string, rows: Row[], slices = 1) => {
    const ctx = testContext({ unitId, runId: `r-${Math.random().toString(36).slice(2)}` });
    const { session, desc } = await stageInMemory(ctx, rows, slices);
    return sink.import(
      {
        unitId,
        reader: session.reader(),
        slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
        handles: [],
        disposition: 'append',
      },
      ctx,
    );
  };

  for (const loadMethod of ['load-data', 'insert'] as const) {
    it(`${loadMethod}: a value that does not fit is row_rejected naming the column, the row and the slice; nothing of the slice stays`, async () => {
      const table = `rej_${loadMethod.replace('-', '_')}`;
      await env.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, code VARCHAR(3) NOT NULL, n TINYINT)`);
      const sink = new MySqlSink({ pool: env.newPool(), loadMethod, tables: { [`x.${table}`]: table } });
      const rows: Row[] = [
        { id: 1, code: 'ok', n: 1 },
        { id: 2, code: 'fine', n: 2 },
      ];
      const err = await stageAndImport(sink, `x.${table}`, rows).catch((e) => e);
      expect(IngestError.is(err, 'row_rejected')).toBe(true);
      expect(err.message).toContain('"code"');
      expect(err.message).toContain('Slice 0');
      expect(err.details).toMatchObject({ column: 'code', slice: 0, row: 2 });
      const nan = await stageAndImport(sink, `x.${table}`, [{ id: 3, code: 'a', n: Number.NaN }]).catch((e) => e);
      expect(nan).toMatchObject({ code: 'row_rejected', details: { column: 'n' } });
      expect(Number((await env.query<any[]>(`SELECT COUNT(*) AS n FROM ${table}`))[0].n)).toBe(0);
      await sink.close();
    });
  }

  it('a pool of one connection loads several append slices without waiting forever', async () => {
    await env.query('CREATE TABLE one (id INT PRIMARY KEY, v TEXT)');
    const sink = new MySqlSink({
      pool: env.newPool({ connectionLimit: 1 }),
      importConcurrency: 4,
      tables: { 'x.one': 'one' },
    });
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i, v: `v${i}` }));
    const r = await stageAndImport(sink, 'x.one', rows, 4);
    expect(r.rowsImported).toBe(40);
  });

  it('a 1 MiB value goes through LOAD DATA and through INSERT statements sized by bytes', async () => {
    await env.query('CREATE TABLE wide (id INT PRIMARY KEY, v LONGTEXT)');
    const big = 'x'.repeat(1024 * 1024);
    for (const loadMethod of ['load-data', 'insert'] as const) {
      const sink = new MySqlSink({
        pool: env.newPool(),
        loadMethod,
        maxStatementBytes: 3 * 1024 * 1024,
        tables: { 'x.wide': 'wide' },
      });
      const base = loadMethod === 'insert' ? 100 : 0;
      await stageAndImport(
        sink,
        'x.wide',
        Array.from({ length: 5 }, (_, i) => ({ id: base + i, v: big })),
      );
    }
    const [c] = await env.query<any[]>('SELECT COUNT(*) AS n, MIN(LENGTH(v)) AS l FROM wide');
    expect([Number(c.n), Number(c.l)]).toEqual([10, 1024 * 1024]);
  });

  it('a malformed connection string is config_invalid without the password', () => {
    for (const connectionString of [
      'postgres://u:hunter2pass@h/db',
      'mysql://u:hunter2pass@h:notaport/db',
      'not a url',
      'mysql://u:hunter2pass@h/db?bogus=1',
    ]) {
      let err: unknown;
      try {
        new MySqlSink({ connectionString });
      } catch (e) {
        err = e;
      }
      expect(IngestError.is(err, 'config_invalid'), connectionString).toBe(true);
      expect(JSON.stringify({ m: (err as Error).message, d: (err as IngestError).details })).not.toContain(
        'hunter2pass',
      );
    }
    expect(() => new MySqlSource({ connectionString: 'mysql://u:p@h:3306/db', pool: env.newPool() })).toThrow(/either/);
  });
});
