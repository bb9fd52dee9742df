/**
 * Incremental boundaries of the PostgreSQL source, swept over the kinds of cursor a user meets: rows that tie with
 * the last value and arrive later (date, coarse timestamp, char(8), bit(4), numeric(5,2), composite), infinite and
 * NULL cursor values, and transactions that commit late (with and without `lag`). Every scenario runs planned
 * (sliced by primary key) and unplanned, into an append target without a key, so a duplicate or a lost row shows in
 * SQL counts; planned runs also on the byte paths (pass-through `pg-copy`, transcoded NDJSON and Arrow staged on
 * disk), which read each slice with `COPY` instead of rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import type { ReadRequest, RecordCodec, SliceSpec, SourceEndpoint, StagingProvider } from '../../src/index.js';
import {
  checkpointKey,
  IngestError,
  MemoryKvStore,
  MemoryStagingProvider,
  ndjsonCodec,
  ObjectStoreStagingProvider,
  runUnit,
} from '../../src/index.js';
import { type PostgresCheckpoint, PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('bound');
const tmp = mkdtempSync(join(tmpdir(), 'pg-bound-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Mode = 'planned' | 'unplanned';
/** The staging codec of a byte path (planned slices read with COPY); none: memory staging, rows. */
type Bytes = 'pg-copy' | 'ndjson' | 'arrow';
const CODECS: Record<Bytes, () => RecordCodec> = { 'pg-copy': pgCopyCodec, ndjson: ndjsonCodec, arrow: arrowCodec };
/** Every way a run reads: planned and unplanned through rows, planned through each byte path. */
const PATHS: { mode: Mode; bytes?: Bytes }[] = [
  { mode: 'planned' },
  { mode: 'unplanned' },
  { mode: 'planned', bytes: 'pg-copy' },
  { mode: 'planned', bytes: 'ndjson' },
  { mode: 'planned', bytes: 'arrow' },
];
const label = (p: { mode: Mode; bytes?: Bytes }) => (p.bytes ? `${p.mode}, ${p.bytes} bytes` : p.mode);

/** The source as a pipeline without a planner sees it: one unplanned read. */
function unplanned(source: PostgresSource): SourceEndpoint<PostgresCheckpoint> {
  return {
    descriptor: source.descriptor,
    read: (req: ReadRequest<PostgresCheckpoint> & { slice?: SliceSpec }, ctx) => source.read(req, ctx),
  };
}

let seq = 0;

/**
 * A source table `src (id int PRIMARY KEY, v text, <columns>)`, an append target `dst` without a key, and a runner.
 * `exported` columns default to every column.
 */
async function setup(opts: {
  columns: string;
  cursor: string[];
  mode: Mode;
  lag?: string | number;
  exported?: string[];
  bytes?: Bytes;
}) {
  const name = `t${++seq}_${opts.mode}`;
  const src = `"${env.schema}"."${name}"`;
  const dst = `"${env.schema}"."${name}_dst"`;
  await env.query(`CREATE TABLE ${src} (id int PRIMARY KEY, v text NOT NULL, ${opts.columns})`);
  const exported = opts.exported ?? ['id', 'v', ...opts.cursor];
  await env.query(`CREATE TABLE ${dst} AS SELECT ${exported.map((c) => `"${c}"`).join(', ')} FROM ${src} WITH NO DATA`);
  const unitId = `${env.schema}.${name}`;
  const pool = env.newPool({ max: 4 });
  let rowReads = 0;
  // counts the reads of rows: a byte path must not make any
  const source = new (class extends PostgresSource {
    override read(...args: Parameters<PostgresSource['read']>) {
      rowReads++;
      return super.read(...args);
    }
  })({
    pool,
    units: {
      [unitId]: {
        cursorColumns: opts.cursor,
        ...(opts.lag !== undefined ? { lag: opts.lag } : {}),
        ...(opts.exported ? { columns: opts.exported } : {}),
      },
    },
  });
  const sink = new PostgresSink({
    pool,
    tables: { [unitId]: `${env.schema}.${name}_dst` },
    ledgerTable: `${env.schema}.ledger`,
  });
  const kv = new MemoryKvStore();
  const staging: StagingProvider = opts.bytes
    ? new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: join(tmp, name) }),
        codec: CODECS[opts.bytes](),
      })
    : new MemoryStagingProvider();
  const unit = { vendor: 'postgres', endpointId: 'pg', unitId };
  const run = async () => {
    if (opts.mode === 'planned') await env.query(`ANALYZE ${src}`);
    const r = await runUnit({
      source: opts.mode === 'planned' ? source : unplanned(source),
      sink,
      staging,
      kv,
      unit,
      mode: 'incremental',
      policy: { sliceMaxRows: 40, chunkSize: 25, retry: { maxAttempts: 1 } },
    });
    return r;
  };
  const cols = exported.map((c) => `"${c}"::text`).join(', ');
  /** Every current row version of src is in dst, and no version was loaded twice. */
  const check = async () => {
    const missing = await env.query(`SELECT ${cols} FROM ${src} EXCEPT ALL SELECT ${cols} FROM ${dst}`);
    const twice = await env.query(
      `SELECT ${cols}, count(*)::int AS n FROM ${dst} GROUP BY ${cols} HAVING count(*) > 1`,
    );
    return { missing: missing.rows, twice: twice.rows };
  };
  const checkpoint = async () => (await kv.get<PostgresCheckpoint>(checkpointKey(unit)))?.value ?? null;
  return { src, dst, run, check, checkpoint, kv, unit, source, sink, rowReads: () => rowReads };
}

interface Scenario {
  name: string;
  columns: string;
  cursor: string[];
  /** Rows of the first run (SQL run against `{src}`). */
  seed: string[];
  /** Changes after the first run: late ties, updates keeping the cursor, new values. */
  change: string[];
  /** Rows the second run must export. */
  second: number;
  exported?: string[];
  /** Expected text of the checkpoint's `values` after the first run. */
  values1?: (string | null)[] | null;
}

const scenarios: Scenario[] = [
  {
    name: 'date cursor: late ties on the last day, lower ids and updates on that day',
    columns: 'd date NOT NULL',
    cursor: ['d'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, DATE '2024-01-01' + (g % 5) FROM generate_series(1, 200) g`],
    change: [
      // 30 new rows on the last day (ids above and below the ids read), 5 rows of that day updated in place
      `INSERT INTO {src} SELECT g, 'late' || g, DATE '2024-01-05' FROM generate_series(1001, 1020) g`,
      `INSERT INTO {src} SELECT -g, 'low' || g, DATE '2024-01-05' FROM generate_series(1, 10) g`,
      `UPDATE {src} SET v = 'changed' || id WHERE d = DATE '2024-01-05' AND id BETWEEN 1 AND 40`,
    ],
    second: 38,
    values1: ['2024-01-05'],
  },
  {
    name: 'coarse timestamp(0) cursor: late ties in the last second',
    columns: 'ts timestamp(0) NOT NULL',
    cursor: ['ts'],
    seed: [
      `INSERT INTO {src} SELECT g, 'v' || g, TIMESTAMP '2024-01-01 10:00:00' + (g / 50) * interval '1 second' FROM generate_series(1, 149) g`,
    ],
    change: [
      `INSERT INTO {src} SELECT -g, 'tie' || g, TIMESTAMP '2024-01-01 10:00:02' FROM generate_series(1, 7) g`,
      `INSERT INTO {src} VALUES (5000, 'new', TIMESTAMP '2024-01-01 10:00:03')`,
    ],
    second: 8,
    values1: ['2024-01-01 10:00:02'],
  },
  {
    name: 'char(8) cursor',
    columns: 'code char(8) NOT NULL',
    cursor: ['code'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, 'K' || lpad((g % 9)::text, 3, '0') FROM generate_series(1, 120) g`],
    change: [
      `INSERT INTO {src} SELECT -g, 'tie' || g, 'K008' FROM generate_series(1, 4) g`,
      `INSERT INTO {src} VALUES (900, 'after', 'K009')`,
    ],
    second: 5,
    values1: ['K008'],
  },
  {
    name: 'bit(4) cursor',
    columns: 'b bit(4) NOT NULL',
    cursor: ['b'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, (g % 12)::bit(4) FROM generate_series(1, 96) g`],
    change: [
      `INSERT INTO {src} SELECT -g, 'tie' || g, B'1011' FROM generate_series(1, 3) g`,
      `INSERT INTO {src} VALUES (500, 'next', B'1100')`,
    ],
    second: 4,
    values1: ['1011'],
  },
  {
    name: 'numeric(5,2) cursor',
    columns: 'n numeric(5,2) NOT NULL',
    cursor: ['n'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, (g % 50) / 4.0 FROM generate_series(1, 150) g`],
    change: [
      `INSERT INTO {src} SELECT -g, 'tie' || g, 12.25 FROM generate_series(1, 6) g`,
      `UPDATE {src} SET v = 'upd' || id WHERE n = 12.25 AND id > 0`,
      `INSERT INTO {src} VALUES (999, 'max', 999.99)`,
    ],
    second: 10, // 6 ties, 3 updated rows of 12.25, the new maximum
    values1: ['12.25'],
  },
  {
    name: 'infinite timestamptz cursor: ±infinity rows are read once each and never hold the cursor back',
    columns: 'ts timestamptz',
    cursor: ['ts'],
    exported: ['id', 'v'],
    seed: [
      `INSERT INTO {src} SELECT g, 'v' || g, TIMESTAMPTZ '2024-01-01 00:00:00.000001+00' + g * interval '1 minute' FROM generate_series(1, 100) g`,
      `INSERT INTO {src} VALUES (-1, 'inf', 'infinity'), (-2, 'neginf', '-infinity')`,
    ],
    change: [
      `INSERT INTO {src} SELECT g, 'later' || g, TIMESTAMPTZ '2024-02-01 00:00:00+00' FROM generate_series(101, 110) g`,
      `INSERT INTO {src} VALUES (-3, 'inf2', 'infinity')`,
      `UPDATE {src} SET v = 'inf-updated' WHERE id = -1`,
    ],
    second: 12,
    values1: ['2024-01-01 01:40:00.000001+00'],
  },
  {
    name: 'NULL cursor values: read once each, late NULL rows and updates read, a row leaving NULL read',
    columns: 'seq bigint',
    cursor: ['seq'],
    seed: [
      `INSERT INTO {src} SELECT g, 'v' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM generate_series(1, 100) g`,
    ],
    change: [
      `INSERT INTO {src} SELECT g, 'null' || g, NULL FROM generate_series(101, 105) g`,
      `UPDATE {src} SET v = 'changed' WHERE id = 10`,
      `UPDATE {src} SET seq = 5000, v = 'set' WHERE id = 20`,
      `INSERT INTO {src} VALUES (106, 'tie', 99)`,
    ],
    second: 8,
    values1: ['99'],
  },
  {
    name: 'only NULL cursors on the first run',
    columns: 'seq bigint',
    cursor: ['seq'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, NULL FROM generate_series(1, 50) g`],
    change: [
      `INSERT INTO {src} SELECT g, 'n' || g, NULL FROM generate_series(51, 53) g`,
      `INSERT INTO {src} SELECT g, 'n' || g, g FROM generate_series(54, 55) g`,
    ],
    second: 5,
    values1: null,
  },
  {
    name: 'composite cursor (day, seq): ties on the whole tuple and on its first column',
    columns: 'day date NOT NULL, seq int NOT NULL',
    cursor: ['day', 'seq'],
    seed: [`INSERT INTO {src} SELECT g, 'v' || g, DATE '2024-03-01' + (g % 3), g % 7 FROM generate_series(1, 140) g`],
    change: [
      `INSERT INTO {src} SELECT -g, 'tie' || g, DATE '2024-03-03', 6 FROM generate_series(1, 4) g`,
      `INSERT INTO {src} SELECT 1000 + g, 'next' || g, DATE '2024-03-03', 7 + g FROM generate_series(1, 3) g`,
      `INSERT INTO {src} VALUES (2000, 'lower-seq', DATE '2024-03-03', 2)`,
    ],
    second: 7, // the tuple (03-03, 2) is below the last tuple and is not a tie: read only with lag (see below)
    values1: ['2024-03-03', '6'],
  },
];

const sql = (stmt: string, src: string) => stmt.replaceAll('{src}', src);

describe('PostgreSQL incremental boundaries', { timeout: 60_000 }, () => {
  for (const s of scenarios) {
    for (const path of PATHS) {
      const { mode } = path;
      it(`${s.name} (${label(path)})`, async () => {
        const t = await setup({ columns: s.columns, cursor: s.cursor, mode, exported: s.exported, bytes: path.bytes });
        for (const stmt of s.seed) await env.query(sql(stmt, t.src));
        const total = Number((await env.query(`SELECT count(*) AS n FROM ${t.src}`)).rows[0].n);
        const first = await t.run();
        expect(first.stats.rowsExported).toBe(total);
        expect(await t.check()).toEqual({ missing: [], twice: [] });
        const ck = await t.checkpoint();
        expect(ck).toMatchObject({ version: 2, columns: s.cursor, values: s.values1 });
        if (mode === 'planned' && total > 80) expect(first.stats.slices).toBeGreaterThan(1);

        for (const stmt of s.change) await env.query(sql(stmt, t.src));
        const second = await t.run();
        expect(second.stats.rowsExported).toBe(s.second);
        const after = await t.check();
        if (s.name.startsWith('composite')) {
          // (2024-03-03, 2) sorts below the checkpoint tuple and was never a tie: without lag it is not read
          expect(after.missing).toEqual([{ id: '2000', v: 'lower-seq', day: '2024-03-03', seq: '2' }]);
          expect(after.twice).toEqual([]);
        } else expect(after).toEqual({ missing: [], twice: [] });

        const before = await t.kv.get(checkpointKey(t.unit));
        const third = await t.run();
        expect(third.stats.rowsExported).toBe(0);
        expect(third.stats.slices).toBe(0); // nothing staged
        // nothing new: the checkpoint entry is left as it was (same value, same version)
        const afterThird = await t.kv.get(checkpointKey(t.unit));
        expect({ value: afterThird?.value, version: afterThird?.version }).toEqual({
          value: before?.value,
          version: before?.version,
        });
        if (path.bytes) expect(t.rowReads()).toBe(0);
      });
    }
  }

  it('a composite cursor with lag on its first column reads a lower tuple of a day inside the lag', async () => {
    const t = await setup({
      columns: 'day date NOT NULL, seq int NOT NULL',
      cursor: ['day', 'seq'],
      mode: 'planned',
      lag: '1 day',
    });
    await env.query(
      `INSERT INTO ${t.src} SELECT g, 'v' || g, DATE '2024-03-01' + (g % 3), g FROM generate_series(1, 60) g`,
    );
    expect((await t.run()).stats.rowsExported).toBe(60);
    await env.query(
      `INSERT INTO ${t.src} VALUES (100, 'same-day-low', DATE '2024-03-03', 0), (101, 'day-before', DATE '2024-03-02', 0), (102, 'too-old', DATE '2024-03-01', 0)`,
    );
    expect((await t.run()).stats.rowsExported).toBe(2);
    expect((await t.check()).missing).toEqual([{ id: '102', v: 'too-old', day: '2024-03-01', seq: '0' }]);
    expect((await t.check()).twice).toEqual([]);
  });

  for (const path of PATHS) {
    const { mode } = path;
    it(`a transaction that commits late is lost without lag and read once with lag (${label(path)})`, async () => {
      for (const lag of [undefined, '10 minutes', 600] as const) {
        const t = await setup({ columns: 'ts timestamptz NOT NULL', cursor: ['ts'], mode, lag, bytes: path.bytes });
        await env.query(
          `INSERT INTO ${t.src} SELECT g, 'v' || g, TIMESTAMPTZ '2024-05-01 12:00:00+00' + g * interval '1 second' FROM generate_series(1, 90) g`,
        );
        const writer = new pg.Client({ connectionString: env.url });
        await writer.connect();
        try {
          await writer.query('BEGIN');
          // the cursor value is taken when the transaction writes, the row becomes visible when it commits
          await writer.query(`INSERT INTO ${t.src} VALUES (500, 'late', TIMESTAMPTZ '2024-05-01 12:01:00+00')`);
          await env.query(`INSERT INTO ${t.src} VALUES (501, 'early-commit', TIMESTAMPTZ '2024-05-01 12:05:00+00')`);
          const first = await t.run();
          expect(first.stats.rowsExported).toBe(91);
          await writer.query('COMMIT');
        } finally {
          await writer.end();
        }
        const second = await t.run();
        const { missing, twice } = await t.check();
        expect(twice).toEqual([]);
        if (lag === undefined) {
          expect(second.stats.rowsExported).toBe(0);
          expect(missing.map((r) => r.id)).toEqual(['500']);
        } else {
          expect(second.stats.rowsExported).toBe(1);
          expect(missing).toEqual([]);
          // the window starts 10 minutes before the greatest value; rows inside it are fingerprinted
          expect(await t.checkpoint()).toMatchObject({
            values: ['2024-05-01 12:05:00+00'],
            from: ['2024-05-01 11:55:00+00'],
            seenRows: 92,
          });
          // a third run re-reads the window and exports nothing
          expect((await t.run()).stats.rowsExported).toBe(0);
        }
        if (path.bytes) expect(t.rowReads()).toBe(0);
      }
    });
  }

  it('a version-1 checkpoint ({ columns, values, key }) is migrated: the next run resumes after it and commits version 2', async () => {
    const t = await setup({ columns: 'seq bigint', cursor: ['seq'], mode: 'planned' });
    await env.query(`INSERT INTO ${t.src} SELECT g, 'v' || g, g FROM generate_series(1, 50) g`);
    await env.query(`INSERT INTO ${t.src} VALUES (51, 'null-before', NULL)`);
    await t.kv.put(checkpointKey(t.unit), { columns: ['seq'], values: ['30'], key: null });
    const r = await t.run();
    expect(r.stats.rowsExported).toBe(20); // 31…50; the NULL row counts as read by version 1
    expect(await t.checkpoint()).toMatchObject({ version: 2, values: ['50'], from: ['50'], seenRows: 2 });
    await env.query(`INSERT INTO ${t.src} VALUES (52, 'tie', 50), (53, 'null-after', NULL)`);
    expect((await t.run()).stats.rowsExported).toBe(2);
  });

  it('a slice planned by version 1 and resumed after the upgrade reads the window it was planned with', async () => {
    await env.query(`CREATE TABLE "${env.schema}".v1slices (id int PRIMARY KEY, seq int)`);
    await env.query(
      `INSERT INTO "${env.schema}".v1slices SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM generate_series(1, 40) g`,
    );
    const unitId = `${env.schema}.v1slices`;
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['seq'] } } });
    const ctx = testContext({ unitId });
    const ids = async (checkpoint: unknown, bounds: Record<string, unknown>) => {
      const out: number[] = [];
      for await (const b of source.read(
        {
          unitId,
          mode: 'incremental',
          checkpoint: checkpoint as PostgresCheckpoint,
          slice: { index: 0, bounds: bounds as never },
        },
        ctx,
      ))
        out.push(...b.rows.map((r) => Number(r.id)));
      return out.sort((a, b) => a - b);
    };
    const lower = { columns: ['seq'], values: ['10'], key: null };
    expect(await ids(lower, { planned: true, lower, upper: ['20'], includeNulls: false, pkLe: '15' })).toEqual([
      11, 12, 13, 14, 15,
    ]);
    // a first run's slice also took the NULL cursors
    expect(await ids(null, { planned: true, lower: null, upper: ['5'], includeNulls: true, pkGt: '3' })).toEqual([
      4, 5, 10, 20, 30, 40,
    ]);
    const plain = new PostgresSource({ pool: env.newPool() });
    let n = 0;
    for await (const b of plain.read(
      {
        unitId,
        mode: 'full',
        checkpoint: null,
        slice: { index: 1, bounds: { planned: true, lower: null, upper: null, includeNulls: true, pkGt: '30' } },
      },
      ctx,
    ))
      n += b.rows.length;
    expect(n).toBe(10);
  });

  it('a version-1 checkpoint with a key tie-breaker resumes after (values, key)', async () => {
    const t = await setup({ columns: 'd date NOT NULL', cursor: ['d'], mode: 'unplanned' });
    await env.query(
      `INSERT INTO ${t.src} SELECT g, 'v' || g, DATE '2024-01-01' + (g / 10) FROM generate_series(1, 39) g`,
    );
    await t.kv.put(checkpointKey(t.unit), {
      columns: ['d'],
      values: ['2024-01-03'],
      key: { columns: ['id'], values: ['25'] },
    });
    expect((await t.run()).stats.rowsExported).toBe(14); // 26…39
  });

  it('an unreadable version-1 checkpoint (the empty value it wrote for infinity) is refused with checkpoint_invalid', async () => {
    const t = await setup({ columns: 'ts timestamptz', cursor: ['ts'], mode: 'planned' });
    await env.query(`INSERT INTO ${t.src} VALUES (1, 'a', 'infinity')`);
    await t.kv.put(checkpointKey(t.unit), { columns: ['ts'], values: [''], key: null });
    const err = await t.run().catch((e) => e);
    expect(IngestError.is(err, 'checkpoint_invalid')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(t.unit.unitId);
    await t.kv.put(checkpointKey(t.unit), { columns: ['ts'], values: [null], key: null }, { expectedVersion: 1 });
    expect(await t.run().catch((e) => e.code)).toBe('checkpoint_invalid');
  });

  it('incremental without cursorColumns is refused with config_invalid; full reads the table', async () => {
    await env.query(`CREATE TABLE "${env.schema}".nocursor (id int PRIMARY KEY, v text)`);
    await env.query(`INSERT INTO "${env.schema}".nocursor SELECT g, 'v' || g FROM generate_series(1, 30) g`);
    const unitId = `${env.schema}.nocursor`;
    const source = new PostgresSource({ pool: env.newPool() });
    const ctx = testContext({ unitId });
    const err = await source.plan({ unitId, mode: 'incremental', checkpoint: null }, ctx).catch((e) => e);
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect(err.message).toMatch(/cursorColumns.*mode 'full'/);
    const read = async () => {
      for await (const _ of source.read({ unitId, mode: 'incremental', checkpoint: null }, ctx));
    };
    await expect(read()).rejects.toMatchObject({ code: 'config_invalid' });
    let n = 0;
    for await (const b of source.read({ unitId, mode: 'full', checkpoint: null }, ctx)) {
      n += b.rows.length;
      expect(b.checkpoint).toBeUndefined();
    }
    expect(n).toBe(30);
  });

  it('runUnit: a source without any cursor runs full by default and says so; a cursorless unit of an incremental source is refused', async () => {
    await env.query(`CREATE TABLE "${env.schema}".nocursor_run (id int PRIMARY KEY, v text)`);
    await env.query(`CREATE TABLE "${env.schema}".nocursor_run_dst (id int, v text)`);
    await env.query(`INSERT INTO "${env.schema}".nocursor_run SELECT g, 'v' || g FROM generate_series(1, 25) g`);
    const unitId = `${env.schema}.nocursor_run`;
    const pool = env.newPool();
    const sink = new PostgresSink({
      pool,
      tables: { [unitId]: `${env.schema}.nocursor_run_dst` },
      ledgerTable: `${env.schema}.ledger`,
    });
    const events: { type: string; mode?: string }[] = [];
    const run = (source: PostgresSource) =>
      runUnit({
        source,
        sink,
        staging: new MemoryStagingProvider(),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        onEvent: (e) => events.push(e as { type: string; mode?: string }),
        policy: { retry: { maxAttempts: 1 } },
      });
    const plain = new PostgresSource({ pool });
    expect(plain.descriptor.capabilities).not.toContain('ingest.incremental');
    const r = await run(plain);
    expect(r.stats.rowsImported).toBe(25);
    expect(r.newCheckpoint).toBeNull();
    expect(events.find((e) => e.type === 'run.started')).toMatchObject({ mode: 'full' });
    const mixed = new PostgresSource({ pool, units: { 'public.other': { cursorColumns: ['id'] } } });
    expect(mixed.descriptor.capabilities).toContain('ingest.incremental');
    const err = await run(mixed).catch((e) => e);
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect(err.message).toContain(unitId);
  });

  it('a lag window larger than boundaryMaxRows shrinks to the ties for that run and says so; ties are always kept', async () => {
    await env.query(`CREATE TABLE "${env.schema}".capped (id int PRIMARY KEY, seq int NOT NULL)`);
    await env.query(`INSERT INTO "${env.schema}".capped SELECT g, g / 4 FROM generate_series(1, 100) g`);
    const unitId = `${env.schema}.capped`;
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
    const source = new PostgresSource({
      pool: env.newPool(),
      units: { [unitId]: { cursorColumns: ['seq'], lag: 50, boundaryMaxRows: 10 } },
    });
    const ctx = testContext({ unitId, logger });
    const plan = await source.plan({ unitId, mode: 'incremental', checkpoint: null }, ctx);
    // seq 25 is the greatest value (only id 100); the 50-wide window would hold all 100 rows
    expect(plan.checkpoint).toMatchObject({ values: ['25'], from: ['25'], seenRows: 1 });
    expect(warnings.join('\n')).toMatch(/boundaryMaxRows/);
    const wide = new PostgresSource({
      pool: env.newPool(),
      units: { [unitId]: { cursorColumns: ['seq'], lag: 2, boundaryMaxRows: 10 } },
    });
    expect((await wide.plan({ unitId, mode: 'incremental', checkpoint: null }, ctx)).checkpoint).toMatchObject({
      values: ['25'],
      from: ['23'],
      seenRows: 9, // seq 23 (ids 92–95), 24 (96–99), 25 (100)
    });
  });

  it('lag on a cursor of another type, or a lag that is not an interval, is config_invalid', async () => {
    const t = await setup({ columns: 'code text NOT NULL', cursor: ['code'], mode: 'planned', lag: 5 });
    await env.query(`INSERT INTO ${t.src} VALUES (1, 'a', 'x')`);
    expect(await t.run().catch((e) => e.code)).toBe('config_invalid');
    const u = await setup({ columns: 'ts timestamptz NOT NULL', cursor: ['ts'], mode: 'planned', lag: 'soon' });
    await env.query(`INSERT INTO ${u.src} VALUES (1, 'a', now())`);
    const err = await u.run().catch((e) => e);
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect(err.message).toContain('lag');
  });
});
