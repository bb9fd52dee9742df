/**
 * The pg-copy pass-through (PostgreSQL COPY text staged unchanged): exactness as text both ways over every type
 * class, row counts across slices, corruption detection (the import fails with `staging_corrupt` before any row
 * lands, and the byte reader itself never hands out the end of a damaged slice), generic sinks reading the codec as
 * rows (same rows as the row path), and rows from a non-PostgreSQL source encoded as COPY text.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  exportUnit,
  IngestError,
  importUnit,
  MemoryKvStore,
  MemoryObjectStore,
  ObjectStoreStagingProvider,
  type RecordSchema,
  type Row,
  runUnit,
} from '../../src/index.js';
import { PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource, testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';

const env = usePostgres('pass');
const tmp = mkdtempSync(join(tmpdir(), 'pg-pass-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every type class, with values that stress COPY text: escapes, NULLs, infinities, µs, arrays, bytes, JSON. */
const DDL = (schema: string, name: string) => `CREATE TABLE "${schema}"."${name}" (
  id bigint PRIMARY KEY,
  i2 smallint, i4 integer, num numeric(30,10), num_free numeric, f4 real, f8 double precision, b boolean,
  t text, vc varchar(40), ch char(5), u uuid, mood "${schema}".mood,
  ts timestamp, tstz timestamptz, d date, tm time, iv interval, j json, jb jsonb, by bytea,
  ai int[], at text[], am "${schema}".mood[], ai2d int[][], ats timestamptz[]
)`;

async function seed(schema: string, name: string, rows: number) {
  await env.query(DDL(schema, name));
  await env.query(`INSERT INTO "${schema}"."${name}" VALUES
    (1, -32768, -2147483648, '-12345678901234567890.0123456789', '1e-30', 1.5, 1.7976931348623157e308, true,
     E'quote '' dq " bs \\\\ nl \\n cr \\r tab \\t comma , \\\\. end \\\\N', E'\\\\N', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
     '1970-01-01 00:00:00.000001', '2024-02-29T23:59:59.999999+05:30', '2024-02-29', '23:59:59.999999', '1 year 2 mons -3 days 04:05:06.000007',
     '{"a":1.50,"big":12345678901234567890,  "s":"x\\"y"}', '{"nested": {"big": 98765432109876543210, "f": 1.50}, "__proto__": {"x": 1}}',
     '\\x00ff0a09', '{1,NULL,3}', E'{"a,b","c\\\\"d",NULL,"NULL","","tab\\tnl\\n"}', '{happy,sad}', '{{1,2},{3,4}}',
     '{"2024-01-01 00:00:00.000001+00",infinity,NULL}'),
    (2, 32767, 2147483647, '0.0000000001', 'NaN', '-Infinity', 'NaN', false,
     '', '\\.', '     ', '00000000-0000-0000-0000-000000000000', 'sad',
     'infinity', '-infinity', 'infinity', '00:00', '-178000000 years', '[]', '"just a string"', '\\x', '{}', '{}', '{}', '{}', '{}'),
    (3, 0, 0, '0', '-0.5', 'NaN', '-0', null, null, null, null, null, null,
     '0044-03-15 12:00:00.5 BC', '-infinity', '0044-03-15 BC', null, null, null, null, null, null, null, null, null, null),
    (4, null, null, null, null, null, null, null, E'line1\\nline2\\r\\n\\ttabbed ü € 😀', null, null, null, null,
     null, null, '-infinity', null, null, null, '{"k": "\\\\u0001 ctl"}', null, null, null, null, null, null)`);
  await env.query(
    `INSERT INTO "${schema}"."${name}" (id, i4, t, num, tstz, jb)
    SELECT g, g, 'row ' || g || E'\\t' || repeat('x', g % 50), g::numeric / 7,
           '2024-01-01T00:00:00Z'::timestamptz + g * interval '1001 microseconds', jsonb_build_object('g', g, 'f', 1.50)
    FROM generate_series(5, $1) g`,
    [rows],
  );
  await env.query(`ANALYZE "${schema}"."${name}"`);
}

/** Rows of `a` not in `b` and of `b` not in `a`, compared as text with multiplicity; 0 when equal. */
async function differing(schema: string, a: string, b: string): Promise<number> {
  const { rows } = await env.query(
    `SELECT count(*)::int AS n FROM ((SELECT x::text FROM "${schema}"."${a}" x EXCEPT ALL SELECT y::text FROM "${schema}"."${b}" y)
     UNION ALL (SELECT y::text FROM "${schema}"."${b}" y EXCEPT ALL SELECT x::text FROM "${schema}"."${a}" x)) d`,
  );
  return rows[0].n as number;
}

const N = 6000;
let seeded: Promise<void> | undefined;
function prepare(): Promise<void> {
  seeded ??= (async () => {
    await env.query(`CREATE TYPE "${env.schema}".mood AS ENUM ('happy', 'sad')`);
    await seed(env.schema, 'src', N);
  })();
  return seeded;
}

function staging(root = mkdtempSync(join(tmp, 'stage-'))) {
  return {
    root,
    provider: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }), codec: pgCopyCodec() }),
  };
}

describe('pg-copy pass-through: PostgreSQL → staging → PostgreSQL', () => {
  it('moves every type exactly (compared as text both ways), across several slices, rows counted', async () => {
    await prepare();
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".dst (LIKE "${s}".src INCLUDING ALL)`);
    const unitId = `${s}.src`;
    const events: string[] = [];
    const r = await runUnit({
      source: new PostgresSource({ pool: env.newPool({ max: 4 }) }),
      sink: new PostgresSink({
        pool: env.newPool({ max: 4 }),
        tables: { [unitId]: `${s}.dst` },
        ledgerTable: `${s}.ledger`,
      }),
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'pass', unitId, sinkId: 'dst' },
      mode: 'full',
      policy: { sliceMaxRows: 2000, chunkSize: 500 },
      onEvent: (e) => events.push(e.type),
    });
    expect(r.stats.slices).toBeGreaterThanOrEqual(3);
    expect(r.stats.rowsExported).toBe(N);
    expect(r.stats.rowsImported).toBe(N);
    expect(r.stagingHandles.every((h) => h.metadata?.codec === 'pg-copy' && h.key.endsWith('.pgcopy'))).toBe(true);
    expect(r.stagingHandles.reduce((n, h) => n + Number(h.metadata?.rows), 0)).toBe(N);
    expect(events.filter((e) => e === 'slice.staged')).toHaveLength(r.stats.slices);
    expect(await differing(s, 'src', 'dst')).toBe(0);
    const { rows } = await env.query(`SELECT t, by, tstz::text, jb::text FROM "${s}".dst WHERE id = 1`);
    expect(rows[0].t).toContain('\\N');
    expect(rows[0].tstz).toBe('2024-02-29 18:29:59.999999+00');
  }, 120_000);

  it('through S3 staging (multipart for large slices): exact, rows counted', async () => {
    await prepare();
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".dst_s3 (LIKE "${s}".src INCLUDING ALL)`);
    const unitId = `${s}.src`;
    const r = await runUnit({
      source: new PostgresSource({ pool: env.newPool({ max: 4 }) }),
      sink: new PostgresSink({
        pool: env.newPool({ max: 4 }),
        tables: { [unitId]: `${s}.dst_s3` },
        ledgerTable: `${s}.ledger`,
      }),
      staging: new ObjectStoreStagingProvider({
        store: new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() }),
        prefix: uniquePrefix('pass').replace(/\/$/, ''),
        codec: pgCopyCodec(),
      }),
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'pass-s3', unitId, sinkId: 'dst_s3' },
      mode: 'full',
      policy: { sliceMaxRows: 2500, chunkSize: 500 },
    });
    expect(r.stats).toMatchObject({ rowsExported: N, rowsImported: N });
    expect(await differing(s, 'src', 'dst_s3')).toBe(0);
  }, 120_000);

  it('a re-import of the same run adds nothing (the ledger), and merge keeps the last version', async () => {
    await prepare();
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".dst_merge (LIKE "${s}".src INCLUDING ALL)`);
    await env.query(`INSERT INTO "${s}".dst_merge (id, t) VALUES (1, 'old'), (999999, 'kept')`);
    const unitId = `${s}.src`;
    const kv = new MemoryKvStore();
    const { provider } = staging();
    const base = {
      staging: provider,
      kv,
      unit: { vendor: 'postgres', endpointId: 'pass-merge', unitId, sinkId: 'dst_merge' },
      mode: 'full' as const,
      policy: { sliceMaxRows: 2500, chunkSize: 500 },
    };
    const exported = await exportUnit({ ...base, source: new PostgresSource({ pool: env.newPool({ max: 2 }) }) });
    const sink = new PostgresSink({
      pool: env.newPool({ max: 2 }),
      tables: { [unitId]: `${s}.dst_merge` },
      ledgerTable: `${s}.ledger`,
    });
    const first = await importUnit({ ...base, sink, disposition: 'merge' });
    expect(first.stats.rowsImported).toBe(N);
    const again = await importUnit({ ...base, sink, disposition: 'merge', runId: exported.runId });
    expect(again.runId).toBe(exported.runId);
    const { rows } = await env.query(`SELECT count(*)::int AS n FROM "${s}".dst_merge`);
    expect(rows[0].n).toBe(N + 1);
    const { rows: diff } = await env.query(
      `SELECT count(*)::int AS n FROM (SELECT x::text FROM "${s}".src x EXCEPT ALL SELECT y::text FROM "${s}".dst_merge y) d`,
    );
    expect(diff[0].n).toBe(0);
  }, 120_000);

  it('into a target the sink creates, from a sink session in another time zone: timestamps read as UTC like the row path', async () => {
    const s = env.schema;
    await env.query(
      `CREATE TABLE "${s}".tz_src (id int PRIMARY KEY, ts timestamp(6), tz timestamptz(6), d date, iv interval)`,
    );
    await env.query(`INSERT INTO "${s}".tz_src SELECT g, '2024-03-10 01:59:59.999999'::timestamp + g * interval '1 hour',
      '2024-03-10 01:59:59.999999+00'::timestamptz + g * interval '1 hour', '2024-03-10'::date + g, g * interval '1 day 1 second'
      FROM generate_series(1, 50) g`);
    const unitId = `${s}.tz_src`;
    await runUnit({
      source: new PostgresSource({
        pool: env.newPool({
          max: 2,
          options: '-c TimeZone=America/New_York -c DateStyle=SQL,DMY -c IntervalStyle=sql_standard',
        }),
      }),
      sink: new PostgresSink({
        pool: env.newPool({
          max: 2,
          options: '-c TimeZone=Asia/Kolkata -c DateStyle=SQL,MDY -c IntervalStyle=iso_8601',
        }),
        tables: { [unitId]: `${s}.tz_dst` },
        ledgerTable: `${s}.ledger`,
      }),
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'tz', unitId },
      mode: 'full',
    });
    const { rows } = await env.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE d.tz = s.tz AND d.d = s.d AND d.iv::interval = s.iv
         AND d.ts = (s.ts AT TIME ZONE 'UTC'))::int AS same
       FROM "${s}".tz_src s JOIN "${s}".tz_dst d USING (id)`,
    );
    expect(rows[0]).toEqual({ n: 50, same: 50 });
  }, 60_000);

  it('an empty table, then an incremental run with nothing new: empty slices, zero rows, checkpoint kept', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".empty_src (id bigint PRIMARY KEY, at timestamptz NOT NULL)`);
    await env.query(`CREATE TABLE "${s}".empty_dst (LIKE "${s}".empty_src)`);
    const unitId = `${s}.empty_src`;
    const kv = new MemoryKvStore();
    const run = () =>
      runUnit({
        source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['at'] } } }),
        sink: new PostgresSink({
          pool: env.newPool({ max: 2 }),
          tables: { [unitId]: `${s}.empty_dst` },
          ledgerTable: `${s}.ledger`,
        }),
        staging: staging().provider,
        kv,
        unit: { vendor: 'postgres', endpointId: 'empty', unitId },
        mode: 'incremental',
      });
    const first = await run();
    expect(first.stats).toMatchObject({ rowsExported: 0, rowsImported: 0 });
    await env.query(
      `INSERT INTO "${s}".empty_src VALUES (1, '2024-01-01T00:00:00.000001Z'), (2, '2024-01-01T00:00:00.000002Z')`,
    );
    const second = await run();
    expect(second.stats).toMatchObject({ rowsExported: 2, rowsImported: 2 });
    // the checkpoint's text form belongs to the source (ISO or PostgreSQL text); it holds the last microsecond
    expect(JSON.stringify(second.newCheckpoint)).toMatch(/00:00:00\.000002/);
    const third = await run();
    expect(third.stats).toMatchObject({ rowsExported: 0, rowsImported: 0 });
    expect(third.newCheckpoint).toEqual(second.newCheckpoint);
    expect(await differing(s, 'empty_src', 'empty_dst')).toBe(0);
  }, 60_000);

  it('replace: the target holds exactly the source afterwards, in one transaction', async () => {
    await prepare();
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".dst_replace (LIKE "${s}".src INCLUDING ALL)`);
    await env.query(`INSERT INTO "${s}".dst_replace (id, t) VALUES (1, 'old'), (999999, 'gone')`);
    const unitId = `${s}.src`;
    const r = await runUnit({
      source: new PostgresSource({ pool: env.newPool({ max: 2 }) }),
      sink: new PostgresSink({
        pool: env.newPool({ max: 2 }),
        tables: { [unitId]: `${s}.dst_replace` },
        ledgerTable: `${s}.ledger`,
      }),
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'pass-replace', unitId, sinkId: 'dst_replace' },
      mode: 'full',
      disposition: 'replace',
      policy: { sliceMaxRows: 2000 },
    });
    expect(r.stats.slices).toBeGreaterThanOrEqual(3);
    expect(await differing(s, 'src', 'dst_replace')).toBe(0);
  }, 60_000);

  it('a generic sink reads pg-copy slices as the same rows the row path gives', async () => {
    await prepare();
    await env.query(`CREATE TABLE "${env.schema}".src_finite AS SELECT * FROM "${env.schema}".src`);
    await env.query(`ALTER TABLE "${env.schema}".src_finite ADD PRIMARY KEY (id)`);
    const unitId = `${env.schema}.src_finite`;
    const collect = async (codec: 'pg-copy' | 'ndjson') => {
      const sink = new MemorySink();
      const root = mkdtempSync(join(tmp, `generic-${codec}-`));
      await runUnit({
        source: new PostgresSource({ pool: env.newPool({ max: 2 }) }),
        sink,
        staging:
          codec === 'pg-copy'
            ? staging(root).provider
            : new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: `generic-${codec}`, unitId },
        mode: 'full',
        policy: { sliceMaxRows: 2000, chunkSize: 700 },
      });
      const rows = sink.rows(unitId);
      return [...rows].sort((a, b) => Number(a.id) - Number(b.id));
    };
    const viaCopy = await collect('pg-copy');
    const viaRows = await collect('ndjson');
    expect(viaCopy).toHaveLength(N);
    expect(viaCopy).toEqual(viaRows);
    const one = viaCopy.find((r) => r.id === 1n)!;
    expect(one.t).toBe('quote \' dq " bs \\ nl \n cr \r tab \t comma , \\. end \\N');
    expect(one.by).toEqual(new Uint8Array([0, 255, 10, 9]));
    expect(one.ai).toEqual([1, null, 3]);
    expect(one.ai2d).toEqual([
      [1, 2],
      [3, 4],
    ]);
  }, 120_000);

  it('rows from a non-PostgreSQL source are staged as COPY text and land exactly', async () => {
    const s = env.schema;
    await env.query(
      `CREATE TABLE "${s}".from_memory (id bigint PRIMARY KEY, t text, n numeric, at timestamptz, j jsonb, by bytea, f double precision)`,
    );
    const schema: RecordSchema = {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 't', type: 'string', nullable: true },
        { name: 'n', type: 'decimal', nullable: true },
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'j', type: 'json', nullable: true },
        { name: 'by', type: 'binary', nullable: true },
        { name: 'f', type: 'float64', nullable: true },
      ],
      primaryKey: ['id'],
    };
    const rows: Row[] = [
      {
        id: 1n,
        t: 'tab\there\nnewline \\ backslash \\N \\.',
        n: '1.50',
        at: new Date('2024-01-01T00:00:00.123Z'),
        j: { a: [1, 'x', null], big: 12345678901234567890n },
        by: new Uint8Array([0, 10, 92]),
        f: -0,
      },
      { id: 2n, t: '', n: 'NaN', at: null, j: 'str', by: new Uint8Array(), f: Number.NaN },
      { id: 3n, t: null, n: null, at: null, j: null, by: null, f: Number.POSITIVE_INFINITY },
    ];
    const unitId = 'mem.from_memory';
    const sink = new PostgresSink({
      pool: env.newPool({ max: 2 }),
      tables: { [unitId]: `${s}.from_memory` },
      ledgerTable: `${s}.ledger`,
    });
    const r = await runUnit({
      source: new MemorySource({ units: { [unitId]: { rows, schema } } }),
      sink,
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { endpointId: 'mem', unitId },
      mode: 'full',
    });
    expect(r.stats.rowsImported).toBe(3);
    const { rows: got } = await env.query(
      `SELECT id::text, t, n::text, at, j::text, by, f::text FROM "${s}".from_memory ORDER BY id`,
    );
    expect(got[0]).toMatchObject({
      t: rows[0].t,
      n: '1.50',
      j: '{"a": [1, "x", null], "big": 12345678901234567890}',
      f: '-0',
    });
    expect((got[0].at as Date).toISOString()).toBe('2024-01-01T00:00:00.123Z');
    expect(new Uint8Array(got[0].by)).toEqual(new Uint8Array([0, 10, 92]));
    expect(got[1]).toMatchObject({ t: '', n: 'NaN', at: null, j: '"str"', f: 'NaN' });
    expect(got[2]).toMatchObject({ t: null, n: null, j: null, by: null, f: 'Infinity' });

    // the same rows round-trip through the codec alone
    const store = new MemoryObjectStore();
    const back = new MemorySink();
    await runUnit({
      source: new MemorySource({ units: { [unitId]: { rows, schema } } }),
      sink: back,
      staging: new ObjectStoreStagingProvider({ store, codec: pgCopyCodec() }),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'mem2', unitId },
      mode: 'full',
    });
    const b = back.rows(unitId);
    expect(b[0]).toMatchObject({ id: 1n, t: rows[0].t, n: '1.50', by: rows[0].by });
    expect(Object.is(b[0].f, -0)).toBe(true);
    expect(Number.isNaN(b[1].f)).toBe(true);
    expect(b[2]).toEqual({ id: 3n, t: null, n: null, at: null, j: null, by: null, f: Number.POSITIVE_INFINITY });
  }, 60_000);

  it('policy.maxRowBytes holds on the pass-through: a longer row fails the slice with row_rejected', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".wide (id int PRIMARY KEY, t text)`);
    await env.query(
      `INSERT INTO "${s}".wide SELECT g, repeat('x', CASE WHEN g = 700 THEN 5000 ELSE 10 END) FROM generate_series(1, 1000) g`,
    );
    const unitId = `${s}.wide`;
    const err = await runUnit({
      source: new PostgresSource({ pool: env.newPool({ max: 2 }) }),
      sink: new PostgresSink({
        pool: env.newPool({ max: 2 }),
        tables: { [unitId]: `${s}.wide_dst` },
        ledgerTable: `${s}.ledger`,
      }),
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'wide', unitId },
      mode: 'full',
      policy: { maxRowBytes: 1000, retry: { maxAttempts: 1 } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'row_rejected'), String(err)).toBe(true);
    expect((err as IngestError).details).toMatchObject({ maxRowBytes: 1000 });
    expect((err as IngestError).details.bytes).toBeGreaterThan(1000);
  }, 60_000);

  it('refuses text with NUL with row_rejected naming the column', async () => {
    const unitId = 'mem.nul';
    const err = await runUnit({
      source: new MemorySource({
        units: {
          [unitId]: {
            rows: [{ id: 1n, t: 'a\u0000b' }],
            schema: {
              fields: [
                { name: 'id', type: 'int64', nullable: false },
                { name: 't', type: 'string', nullable: true },
              ],
            },
          },
        },
      }),
      sink: new MemorySink(),
      staging: new ObjectStoreStagingProvider({ store: new MemoryObjectStore(), codec: pgCopyCodec() }),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'nul', unitId },
      mode: 'full',
      policy: { retry: { maxAttempts: 1 } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'row_rejected'), String(err)).toBe(true);
    expect((err as IngestError).message).toContain('"t"');
  }, 30_000);
});

describe('pg-copy pass-through: damaged staging', () => {
  /** Export the source into a fresh session; returns the slice files and an import into a fresh target. */
  async function exported(name: string) {
    await prepare();
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}"."dst_${name}" (LIKE "${s}".src INCLUDING ALL)`);
    const unitId = `${s}.src`;
    const { root, provider } = staging();
    const base = {
      staging: provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: `corrupt-${name}`, unitId, sinkId: name },
      mode: 'full' as const,
      policy: { sliceMaxRows: 2000, chunkSize: 500, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    };
    const ex = await exportUnit({ ...base, source: new PostgresSource({ pool: env.newPool({ max: 2 }) }) });
    const runDir = join(root, ex.sessionRef.sessionId as string);
    const slices = readdirSync(runDir)
      .filter((f) => /^\d{6}\.pgcopy$/.test(f))
      .sort();
    expect(slices.length).toBeGreaterThanOrEqual(3);
    const importIt = () =>
      importUnit({
        ...base,
        sink: new PostgresSink({
          pool: env.newPool({ max: 2 }),
          tables: { [unitId]: `${s}.dst_${name}` },
          ledgerTable: `${s}.ledger`,
        }),
        disposition: 'append',
      });
    return { base, ex, runDir, slices, importIt, target: `"${s}"."dst_${name}"` };
  }

  async function expectCorrupt(c: Awaited<ReturnType<typeof exported>>) {
    const err = await c.importIt().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'staging_corrupt'), String(err)).toBe(true);
    const { rows } = await env.query(`SELECT count(*)::int AS n FROM ${c.target}`);
    expect(rows[0].n, 'no row of a damaged session reaches the target').toBe(0);
  }

  it('a flipped byte (same size)', async () => {
    const c = await exported('flip');
    const f = join(c.runDir, c.slices[1]);
    const buf = readFileSync(f);
    const i = buf.indexOf('row ', Math.floor(buf.length / 2)) + 4;
    buf[i] = buf[i] === 0x31 ? 0x32 : 0x31;
    writeFileSync(f, buf);
    await expectCorrupt(c);
  }, 60_000);

  it('a truncated slice, a slice cut inside a row, and a manifest row count off by one', async () => {
    const t = await exported('trunc');
    truncateSync(join(t.runDir, t.slices[2]), 100);
    await expectCorrupt(t);

    const m = await exported('manifest');
    const manifest = JSON.parse(readFileSync(join(m.runDir, 'manifest.json'), 'utf8'));
    manifest.slices[0].rows += 1;
    writeFileSync(join(m.runDir, 'manifest.json'), JSON.stringify(manifest));
    await expectCorrupt(m);
  }, 120_000);

  it('a reader failing in the middle of a COPY rolls the slice back: no row, no ledger entry, and a retry loads it once', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".mid (id int PRIMARY KEY, t text)`);
    const unitId = `${s}.mid_src`;
    const pool = env.newPool({ max: 1 });
    const sink = new PostgresSink({ pool, tables: { [unitId]: `${s}.mid` }, ledgerTable: `${s}.ledger` });
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\trow ${i}\n`).join('');
    const bytes = Buffer.from(lines);
    const schema: RecordSchema = {
      fields: [
        { name: 'id', type: 'int32', nullable: false },
        { name: 't', type: 'string', nullable: true },
      ],
    };
    const slice = (fail: boolean) => ({
      index: 0,
      rows: 5000,
      codec: 'pg-copy',
      reader: {
        async *iterBatches() {},
        async *iterEncoded() {
          yield bytes.subarray(0, 40_000);
          await new Promise((r) => setTimeout(r, 20));
          if (fail) throw new IngestError('staging_corrupt', 'damaged on the way');
          yield bytes.subarray(40_000);
        },
      },
    });
    const request = (fail: boolean) => ({
      unitId,
      reader: { async *iterBatches() {} },
      slices: [slice(fail)],
      handles: [],
      schema,
      disposition: 'append' as const,
    });
    const ctx = testContext({ unitId, runId: 'mid-run', endpointId: 'mid' });
    const err = await sink.import(request(true), ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'staging_corrupt'), String(err)).toBe(true);
    expect((await env.query(`SELECT count(*)::int AS n FROM "${s}".mid`)).rows[0].n).toBe(0);
    expect((await env.query(`SELECT count(*)::int AS n FROM "${s}".ledger WHERE run_id = 'mid-run'`)).rows[0].n).toBe(
      0,
    );
    const ok = await sink.import(request(false), ctx);
    expect(ok.rowsImported).toBe(5000);
    await sink.import(request(false), ctx); // the ledger makes a repeat a no-op
    expect((await env.query(`SELECT count(*)::int AS n FROM "${s}".mid`)).rows[0].n).toBe(5000);
  }, 60_000);

  it('the byte reader itself never hands out the end of a damaged slice', async () => {
    const c = await exported('reader');
    const f = join(c.runDir, c.slices[0]);
    const buf = readFileSync(f);
    expect(buf.length).toBeGreaterThan(128 * 1024); // several read chunks
    buf[buf.length - 10] = buf[buf.length - 10] === 0x31 ? 0x32 : 0x31; // damage near the end
    writeFileSync(f, buf);
    const session = await c.base.staging.openSession(c.ex.sessionRef);
    let handed = 0;
    const err = await (async () => {
      for await (const chunk of session.reader({ slice: 0 }).iterEncoded!()) handed += chunk.byteLength;
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'staging_corrupt'), String(err)).toBe(true);
    expect(handed).toBeLessThan(buf.length);
    expect(handed).toBeLessThanOrEqual(buf.length - 10);
    // undamaged: every byte, unchanged
    const ok = await session.reader({ slice: 1 }).iterEncoded!();
    const parts: Uint8Array[] = [];
    for await (const chunk of ok) parts.push(chunk);
    expect(Buffer.concat(parts).equals(readFileSync(join(c.runDir, c.slices[1])))).toBe(true);
    await session.close();
  }, 60_000);
});
