/**
 * Incremental boundaries of MySqlSource (docs/decisions/0005-incremental-boundaries.md, as the PostgreSQL source):
 * rows that tie with the last value and arrive later — with keys below the ones read — or are updated in place, NULL
 * cursors, transactions that commit late (with and without `lag`), version-1 checkpoints. Every scenario runs planned
 * (sliced by primary key) and unplanned, into an append target without a key, so a duplicate or a lost row shows in
 * SQL counts.
 */
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import type { ReadRequest, SliceSpec, SourceEndpoint } from '../../src/index.js';
import { checkpointKey, MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { type MySqlCheckpoint, MySqlSink, MySqlSource } from '../../src/mysql/index.js';
import { MemorySink } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';

const env = useMySql('bound');

type Mode = 'planned' | 'unplanned';

/** The source as a pipeline without a planner sees it: one unplanned read. */
function unplanned(source: MySqlSource): SourceEndpoint<MySqlCheckpoint> {
  return {
    descriptor: source.descriptor,
    read: (req: ReadRequest<MySqlCheckpoint> & { slice?: SliceSpec }, ctx) => source.read(req, ctx),
  };
}

let seq = 0;

/** A source table `src (id INT PRIMARY KEY, v VARCHAR(40), <columns>)`, an append target without a key, a runner. */
async function setup(opts: { columns: string; cursor: string[]; mode: Mode; lag?: string | number }) {
  const name = `t${++seq}_${opts.mode}`;
  await env.query(`CREATE TABLE ${name} (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, ${opts.columns})`);
  await env.query(`CREATE TABLE ${name}_dst ENGINE=InnoDB SELECT * FROM ${name} LIMIT 0`);
  const unitId = `${env.database}.${name}`;
  const pool = env.newPool({ connectionLimit: 4 });
  const source = new MySqlSource({
    pool,
    units: { [unitId]: { cursorColumns: opts.cursor, ...(opts.lag !== undefined ? { lag: opts.lag } : {}) } },
  });
  const sink = new MySqlSink({ pool, tables: { [unitId]: `${name}_dst` } });
  const kv = new MemoryKvStore();
  const staging = new MemoryStagingProvider();
  const unit = { vendor: 'mysql', endpointId: 'my', unitId };
  const run = () =>
    runUnit({
      source: opts.mode === 'planned' ? source : unplanned(source),
      sink,
      staging,
      kv,
      unit,
      mode: 'incremental',
      policy: { sliceMaxRows: 40, chunkSize: 25, retry: { maxAttempts: 1 } },
    });
  /** Every current row version of src is in dst, and no version was loaded twice. */
  const check = async () => {
    const missing = await env.query<any[]>(`SELECT * FROM ${name} EXCEPT ALL SELECT * FROM ${name}_dst`);
    const twice = await env.query<any[]>(
      `SELECT id, COUNT(*) AS n FROM ${name}_dst GROUP BY ${[`id`, 'v', ...opts.cursor].join(', ')} HAVING COUNT(*) > 1`,
    );
    return { missing: missing.map((r) => String(r.id)), twice: twice.map((r) => String(r.id)) };
  };
  const checkpoint = async () => (await kv.get<MySqlCheckpoint>(checkpointKey(unit)))?.value ?? null;
  return { name, run, check, checkpoint, kv, unit };
}

describe('MySQL incremental boundaries', { timeout: 120_000 }, () => {
  for (const mode of ['planned', 'unplanned'] as const) {
    it(`DATE cursor: late ties on the last day with lower ids, and in-place updates on that day, are read once (${mode})`, async () => {
      const t = await setup({ columns: 'd DATE NOT NULL', cursor: ['d'], mode });
      await env.query(
        `INSERT INTO ${t.name} SELECT seq, CONCAT('v', seq), DATE'2024-01-01' + INTERVAL (seq % 5) DAY FROM seq_1_to_200`,
      );
      const first = await t.run();
      expect(first.stats.rowsExported).toBe(200);
      if (mode === 'planned') expect(first.stats.slices).toBeGreaterThan(1);
      expect(await t.checkpoint()).toMatchObject({ version: 2, columns: ['d'], values: ['2024-01-05'], seenRows: 40 });
      await env.query(`INSERT INTO ${t.name} SELECT seq, CONCAT('late', seq), '2024-01-05' FROM seq_1001_to_1020`);
      await env.query(`INSERT INTO ${t.name} SELECT -seq, CONCAT('low', seq), '2024-01-05' FROM seq_1_to_10`);
      await env.query(`UPDATE ${t.name} SET v = CONCAT('changed', id) WHERE d = '2024-01-05' AND id BETWEEN 1 AND 40`);
      const second = await t.run();
      expect(second.stats.rowsExported).toBe(38); // 20 late + 10 lower ids + 8 updated
      // an updated row is exported again as its new version; the old version stays in the append target
      const after = await t.check();
      expect(after).toEqual({ missing: [], twice: [] });
      const before = await t.kv.get(checkpointKey(t.unit));
      const third = await t.run();
      expect(third.stats.rowsExported).toBe(0);
      const afterThird = await t.kv.get(checkpointKey(t.unit));
      expect({ value: afterThird?.value, version: afterThird?.version }).toEqual({
        value: before?.value,
        version: before?.version,
      });
    });

    it(`a transaction that commits late is lost without lag and read once with lag (${mode})`, async () => {
      for (const lag of [undefined, '10 minutes', 600] as const) {
        const t = await setup({ columns: 'ts DATETIME(6) NOT NULL', cursor: ['ts'], mode, lag });
        await env.query(
          `INSERT INTO ${t.name} SELECT seq, CONCAT('v', seq), TIMESTAMP'2024-05-01 12:00:00' + INTERVAL seq SECOND FROM seq_1_to_90`,
        );
        const writer = await mysql.createConnection({ uri: env.url });
        try {
          await writer.query('START TRANSACTION');
          // the cursor value is taken when the transaction writes, the row becomes visible when it commits
          await writer.query(`INSERT INTO ${t.name} VALUES (500, 'late', '2024-05-01 12:01:00')`);
          await env.query(`INSERT INTO ${t.name} VALUES (501, 'early-commit', '2024-05-01 12:05:00')`);
          expect((await t.run()).stats.rowsExported).toBe(91);
          await writer.query('COMMIT');
        } finally {
          await writer.end();
        }
        const second = await t.run();
        const { missing, twice } = await t.check();
        expect(twice).toEqual([]);
        if (lag === undefined) {
          expect(second.stats.rowsExported).toBe(0);
          expect(missing).toEqual(['500']);
        } else {
          expect(second.stats.rowsExported).toBe(1);
          expect(missing).toEqual([]);
          expect(await t.checkpoint()).toMatchObject({
            values: ['2024-05-01 12:05:00.000000'],
            from: ['2024-05-01 11:55:00.000000'],
            seenRows: 92,
          });
          expect((await t.run()).stats.rowsExported).toBe(0);
        }
      }
    });
  }

  it('a composite cursor with lag on its first column reads a lower tuple of a day inside the lag', async () => {
    const t = await setup({
      columns: 'day DATE NOT NULL, sq INT NOT NULL',
      cursor: ['day', 'sq'],
      mode: 'planned',
      lag: '1 day',
    });
    await env.query(
      `INSERT INTO ${t.name} SELECT seq, CONCAT('v', seq), DATE'2024-03-01' + INTERVAL (seq % 3) DAY, seq FROM seq_1_to_60`,
    );
    expect((await t.run()).stats.rowsExported).toBe(60);
    await env.query(
      `INSERT INTO ${t.name} VALUES (100, 'same-day-low', '2024-03-03', 0), (101, 'day-before', '2024-03-02', 0), (102, 'too-old', '2024-03-01', 0)`,
    );
    expect((await t.run()).stats.rowsExported).toBe(2);
    expect(await t.check()).toEqual({ missing: ['102'], twice: [] });
  });

  it('a numeric lag on a BIGINT UNSIGNED cursor near 0 does not wrap around', async () => {
    const t = await setup({ columns: 'n BIGINT UNSIGNED NOT NULL', cursor: ['n'], mode: 'planned', lag: 5 });
    await env.query(`INSERT INTO ${t.name} VALUES (1, 'a', 0), (2, 'b', 2)`);
    expect((await t.run()).stats.rowsExported).toBe(2);
    expect(await t.checkpoint()).toMatchObject({ values: ['2'], from: ['0'] });
    await env.query(`INSERT INTO ${t.name} VALUES (3, 'c', 1)`);
    expect((await t.run()).stats.rowsExported).toBe(1);
    expect(await t.check()).toEqual({ missing: [], twice: [] });
  });

  it('a version-1 checkpoint ({ columns, values, key }) is migrated: ties above its key are read, and version 2 is committed', async () => {
    const t = await setup({ columns: 'sq BIGINT NULL', cursor: ['sq'], mode: 'planned' });
    await env.query(`INSERT INTO ${t.name} SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_50`);
    await env.query(
      `INSERT INTO ${t.name} VALUES (51, 'null-before', NULL), (60, 'tie-above-key', 30), (-1, 'tie-below-key', 30)`,
    );
    await t.kv.put(checkpointKey(t.unit), {
      columns: ['sq'],
      values: ['30'],
      key: { columns: ['id'], values: ['30'] },
    });
    const r = await t.run();
    // 31…50 and the tie above the key; the NULL row and the tie below the key count as read by version 1
    expect(r.stats.rowsExported).toBe(21);
    expect(await t.checkpoint()).toMatchObject({ version: 2, values: ['50'], from: ['50'], seenRows: 2 });
    await env.query(`INSERT INTO ${t.name} VALUES (52, 'tie', 50), (53, 'null-after', NULL)`);
    expect((await t.run()).stats.rowsExported).toBe(2);
  });

  it('a checkpoint of other cursor columns is checkpoint_invalid; a lag that does not fit the cursor is config_invalid', async () => {
    const t = await setup({ columns: 'sq BIGINT NOT NULL', cursor: ['sq'], mode: 'planned' });
    await t.kv.put(checkpointKey(t.unit), {
      version: 2,
      columns: ['other'],
      values: ['1'],
      from: ['1'],
      seen: '',
      seenRows: 0,
    });
    await expect(t.run()).rejects.toMatchObject({ code: 'checkpoint_invalid' });
    for (const [columns, lag] of [
      ['v2 VARCHAR(10) NOT NULL', 5],
      ['d DATE NOT NULL', 'soon'],
      ['i INT NOT NULL', 1.5],
    ] as const) {
      const u = await setup({ columns, cursor: [columns.split(' ')[0]], mode: 'planned', lag });
      await expect(u.run()).rejects.toMatchObject({ code: 'config_invalid' });
    }
  });

  it('a lag window larger than boundaryMaxRows shrinks to the ties for that run; ties are always kept', async () => {
    const name = `t${++seq}_shrink`;
    await env.query(`CREATE TABLE ${name} (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NOT NULL)`);
    await env.query(`INSERT INTO ${name} SELECT seq, CONCAT('v', seq), seq DIV 10 FROM seq_1_to_100`);
    const unitId = `${env.database}.${name}`;
    const pool = env.newPool({ connectionLimit: 2 });
    const source = new MySqlSource({
      pool,
      units: { [unitId]: { cursorColumns: ['n'], lag: 5, boundaryMaxRows: 20 } },
    });
    const kv = new MemoryKvStore();
    const sink = new MemorySink();
    const warnings: string[] = [];
    const unit = { vendor: 'mysql', endpointId: 'my', unitId };
    const run = () =>
      runUnit({
        source,
        sink,
        staging: new MemoryStagingProvider(),
        kv,
        unit,
        mode: 'incremental',
        logger: { debug() {}, info() {}, error() {}, warn: (m: string) => void warnings.push(m) },
      });
    expect((await run()).stats.rowsExported).toBe(100);
    // the window (n >= 5) holds 51 rows > 20: this run keeps only the ties (n = 10: 1 row)
    expect(warnings.some((w) => w.includes('boundaryMaxRows'))).toBe(true);
    expect(await kv.get<MySqlCheckpoint>(checkpointKey(unit)).then((e) => e?.value)).toMatchObject({
      values: ['10'],
      from: ['10'],
      seenRows: 1,
    });
    await env.query(`INSERT INTO ${name} VALUES (200, 'tie', 10), (201, 'new', 11)`);
    expect((await run()).stats.rowsExported).toBe(2);
    await source.close();
  });
});
