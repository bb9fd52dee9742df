/**
 * The Arrow transcoders on a real PostgreSQL: the type matrix (every common type with its edge values) plus a few
 * thousand generated rows, copied by runUnit through filesystem staging with `arrowCodec()`, once transcoded
 * (COPY text → Arrow on export, Arrow → COPY text format on import) and once forced through rows (`onRejectedRow:
 * 'dead-letter'` makes the export take rows). Both targets equal the source as text, both ways; the staged slices
 * of both paths decode to the same rows; the transcoded import reads slices the row path staged; and a damaged
 * slice still fails the import with `staging_corrupt` before any row commits.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordBatchReader } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  exportUnit,
  IngestError,
  importUnit,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
  type StagingSessionRef,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { createMatrix, diffTables } from './fixtures/pg-type-matrix.js';

const env = usePostgres('arrow_tc');
const tmp = mkdtempSync(join(tmpdir(), 'pg-arrow-tc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Generated rows: the common types across and beyond the fast ranges, escapes, 4-byte characters, NULLs. */
const BULK = 9_000;
const BULK_ROWS = `
INSERT INTO src (id, i2, i4, i8, num, num12, f4, f8, t, vc, b, by, d, ts, tstz, iv, u, j, jb, a_int, a_text, mo, ip)
SELECT g,
  CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 32767)::int2 END,
  g * 7 - 30000,
  CASE WHEN g % 13 = 0 THEN NULL WHEN g % 2 = 0 THEN -(g::int8 * 922337203685477) ELSE g::int8 * 92233720368 END,
  g / 7.0,
  (g % 100000) / 100.0,
  (g / 3.0)::real,
  CASE WHEN g % 17 = 0 THEN 'NaN'::float8 ELSE g / 9.0 END,
  CASE WHEN g % 19 = 0 THEN NULL ELSE 'row ' || g || E'\\t' || repeat('ü😀', g % 5) || E'\\\\' || CASE WHEN g % 3 = 0 THEN E'\\n"q",' ELSE '' END END,
  left(md5(g::text), 10),
  g % 3 = 0,
  CASE WHEN g % 7 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
  '2000-01-01'::date + g,
  '1650-01-01 00:00:00'::timestamp + g * interval '41 days 1 second 7 microseconds',
  CASE WHEN g % 23 = 0 THEN NULL ELSE '1650-01-01 00:00:00+00'::timestamptz + g * interval '41 days 3 hours 1.000001 seconds' END,
  g * interval '1 hour 1 microsecond',
  md5(g::text)::uuid,
  json_build_object('g', g, 's', 'q"uote\\' || g),
  jsonb_build_object('k', g % 10, 'tags', jsonb_build_array('a', g % 7, true), 'n', g / 3.0),
  ARRAY[g, NULL, -g],
  ARRAY['x' || g, NULL, 'a,b'],
  CASE WHEN g % 2 = 0 THEN 'happy'::mood ELSE 'sad'::mood END,
  ('10.0.' || (g % 256) || '.1')::inet
FROM generate_series(5, ${BULK + 4}) g`;

const TOTAL = BULK + 4;

beforeAll(async () => {
  await createMatrix(env);
  const c = await env.pool.connect();
  try {
    await c.query(`SET search_path = "${env.schema}", public; SET TimeZone = 'America/St_Johns'`);
    await c.query(BULK_ROWS);
  } finally {
    c.release();
  }
}, 60_000);

const diff = (a: string, b: string) => diffTables(env, a, b);

let dirs = 0;
const BATCH_ROWS = 700;
/** A filesystem staging of its own; `batchRows: 700` (not the default) is where both paths must cut record batches. */
function staging() {
  const root = join(tmp, `s${++dirs}`);
  return {
    root,
    provider: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root }),
      codec: arrowCodec({ batchRows: BATCH_ROWS }),
    }),
  };
}

const POLICY = { sliceMaxRows: 4000, chunkSize: 1000 };
const ROW_PATH = { ...POLICY, onRejectedRow: 'dead-letter' as const };
const deadLetter = {
  async write() {
    throw new Error('no row is rejected here');
  },
};

const sourcePool = () =>
  env.newPool({ max: 3, options: `-c search_path="${env.schema}",public -c TimeZone=America/St_Johns` });
const sinkPool = () =>
  env.newPool({ max: 3, options: `-c search_path="${env.schema}",public -c TimeZone=Asia/Kolkata` });

/** The staged `.arrows` slice files of the one session under `root`, in slice order. */
function sliceFiles(root: string): string[] {
  const sessions = readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.arrows'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  return sessions;
}

/** Rows of each record batch of an Arrow IPC file (every stream). */
async function batchSizes(file: string): Promise<number[]> {
  const sizes: number[] = [];
  const bytes = readFileSync(file);
  for await (const reader of RecordBatchReader.readAll(
    (async function* () {
      yield bytes;
    })(),
  ))
    for await (const b of reader) if (b.numRows > 0) sizes.push(b.numRows);
  return sizes;
}

/** Every row of every slice of a session, decoded by the codec (in slice order). */
async function stagedRows(provider: ObjectStoreStagingProvider, ref: StagingSessionRef): Promise<Row[][]> {
  const session = await provider.openSession(ref);
  const desc = await session.describe();
  const out: Row[][] = [];
  for (const slice of [...desc.slices].sort((a, b) => a.index - b.index)) {
    const rows: Row[] = [];
    for await (const batch of session.reader({ slice: slice.index }).iterBatches(1000)) rows.push(...batch);
    out.push(rows);
  }
  await session.close?.();
  return out;
}

describe('Arrow staging, PostgreSQL → PostgreSQL, transcoded and through rows', () => {
  let run = 0;
  for (const [path, policy] of [
    ['transcoded', POLICY],
    ['through rows', ROW_PATH],
  ] as const) {
    it(`runUnit ${path}: the target equals the source as text, both ways`, async () => {
      const target = `dst_${++run}`;
      await env.query(`CREATE TABLE "${env.schema}".${target} (LIKE "${env.schema}".src INCLUDING ALL)`);
      const unitId = `${env.schema}.src`;
      const { root, provider } = staging();
      const debugs: string[] = [];
      const res = await runUnit({
        source: new PostgresSource({ pool: sourcePool(), units: { [unitId]: {} } }),
        sink: new PostgresSink({ pool: sinkPool(), tables: { [unitId]: `${env.schema}.${target}` } }),
        staging: provider,
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'arrow-tc', unitId, sinkId: target },
        mode: 'full',
        policy,
        deadLetter,
        logger: { debug: (m: string) => debugs.push(m), info() {}, warn() {}, error() {} },
      });
      expect(res.stats.rowsExported).toBe(TOTAL);
      expect(res.stats.rowsImported).toBe(TOTAL);
      expect(res.stats.slices).toBeGreaterThanOrEqual(3);
      expect(await diff('src', target)).toEqual([]);
      // Which path staged the slices (the source says so when it transcodes) …
      const transcoded = debugs.filter((m) => m.includes('transcoded to arrow')).length;
      if (path === 'transcoded') expect(transcoded).toBe(res.stats.slices);
      else expect(transcoded).toBe(0);
      // … and both cut record batches at the codec's batchRows (a slice ends one early, so does a widened column)
      const perSlice = await Promise.all(sliceFiles(root).map(batchSizes));
      const sizes = perSlice.flat();
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(TOTAL);
      expect(Math.max(...sizes)).toBe(BATCH_ROWS);
      expect(perSlice.every((s) => s.slice(0, -1).filter((n) => n !== BATCH_ROWS).length <= 1)).toBe(true);
    }, 120_000);
  }

  it('runUnit transcoded into a target the sink creates: the source’s column types, equal as text', async () => {
    const unitId = `${env.schema}.src`;
    const res = await runUnit({
      source: new PostgresSource({ pool: sourcePool(), units: { [unitId]: {} } }),
      sink: new PostgresSink({ pool: sinkPool(), tables: { [unitId]: `${env.schema}.dst_created` } }),
      staging: staging().provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'arrow-tc-created', unitId, sinkId: 'created' },
      mode: 'full',
      policy: POLICY,
    });
    expect(res.stats.rowsImported).toBe(TOTAL);
    const types = async (table: string) =>
      (
        await env.query(
          `SELECT a.attname || ': ' || format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [`"${env.schema}".${table}`],
        )
      ).rows.map((r) => r.t);
    // the source's built-in types; its user-defined ones are not referenced by a created target (ADR 0013): an enum
    // becomes text, a domain its base type
    const s = env.schema;
    const mapped: Record<string, string> = {
      [`${s}.mood[]`]: 'text[]',
      [`${s}.mood`]: 'text',
      [`${s}.posint`]: 'integer',
      [`${s}.shorttext`]: 'character varying(8)',
    };
    const expected = (await types('src')).map((t) => {
      const [col, type] = t.split(': ') as [string, string];
      return `${col}: ${mapped[type] ?? type}`;
    });
    expect(await types('dst_created')).toEqual(expected);
    expect(await diff('src', 'dst_created')).toEqual([]);
  }, 120_000);

  it('the staged slices of both paths decode to the same rows; each import reads the other’s staging', async () => {
    const unitId = `${env.schema}.src`;
    const sessions: { provider: ObjectStoreStagingProvider; ref: StagingSessionRef; kv: MemoryKvStore }[] = [];
    for (const policy of [POLICY, ROW_PATH]) {
      const { provider } = staging();
      const kv = new MemoryKvStore();
      const ex = await exportUnit({
        source: new PostgresSource({ pool: sourcePool(), units: { [unitId]: {} } }),
        staging: provider,
        kv,
        unit: { vendor: 'postgres', endpointId: 'arrow-tc-both', unitId, sinkId: 'x' },
        mode: 'full',
        policy,
        deadLetter,
      });
      expect(ex.stats.rowsExported).toBe(TOTAL);
      sessions.push({ provider, ref: ex.sessionRef, kv });
    }
    const [transcoded, rows] = await Promise.all(sessions.map((s) => stagedRows(s.provider, s.ref)));
    expect(transcoded.length).toBeGreaterThanOrEqual(3);
    expect(transcoded.map((s) => s.length)).toEqual(rows.map((s) => s.length));
    for (let i = 0; i < rows.length; i++) expect(transcoded[i]).toEqual(rows[i]);
    expect(transcoded.flat().length).toBe(TOTAL);

    // both staged sessions imported (the import transcodes either), into targets equal to the source
    for (const [i, s] of sessions.entries()) {
      const target = `dst_both_${i}`;
      await env.query(`CREATE TABLE "${env.schema}".${target} (LIKE "${env.schema}".src INCLUDING ALL)`);
      const res = await importUnit({
        sink: new PostgresSink({ pool: sinkPool(), tables: { [unitId]: `${env.schema}.${target}` } }),
        staging: s.provider,
        kv: s.kv,
        unit: { vendor: 'postgres', endpointId: 'arrow-tc-both', unitId, sinkId: 'x' },
        mode: 'full',
        sessionRef: s.ref,
        policy: POLICY,
      });
      expect(res.stats.rowsImported).toBe(TOTAL);
      expect(await diff('src', target)).toEqual([]);
    }
  }, 180_000);

  it('a damaged staged Arrow slice fails the import with staging_corrupt and commits nothing', async () => {
    const unitId = `${env.schema}.src`;
    const { root, provider } = staging();
    const base = {
      staging: provider,
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'arrow-tc-corrupt', unitId, sinkId: 'corrupt' },
      mode: 'full' as const,
      policy: { ...POLICY, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    };
    const ex = await exportUnit({
      ...base,
      source: new PostgresSource({ pool: sourcePool(), units: { [unitId]: {} } }),
    });
    const files = sliceFiles(root);
    expect(files.length).toBeGreaterThanOrEqual(3);
    // one byte in the middle of slice 1 of 3 (same size): the sha256 no longer matches
    const buf = readFileSync(files[1]);
    const at = Math.floor(buf.length / 2);
    buf[at] ^= 0x01;
    writeFileSync(files[1], buf);
    await env.query(`CREATE TABLE "${env.schema}".dst_corrupt (LIKE "${env.schema}".src INCLUDING ALL)`);
    const err = await importUnit({
      ...base,
      sink: new PostgresSink({ pool: sinkPool(), tables: { [unitId]: `${env.schema}.dst_corrupt` } }),
      sessionRef: ex.sessionRef,
      disposition: 'append',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err, 'staging_corrupt'), String(err)).toBe(true);
    const { rows } = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".dst_corrupt`);
    expect(rows[0].n, 'no row of a damaged session reaches the target').toBe(0);
  }, 120_000);

  it('policy.maxRowBytes applies to the rows (their COPY text), not to the Arrow bytes: small rows pass, a big one is refused', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".sized (id int PRIMARY KEY, name text)`);
    await env.query(`INSERT INTO "${s}".sized SELECT g, 'name-' || g FROM generate_series(1, 10000) g`);
    const unitId = `${s}.sized`;
    const base = {
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'arrow-tc-sized', unitId },
      mode: 'full' as const,
      policy: { maxRowBytes: 20_000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    };
    const source = () => new PostgresSource({ pool: sourcePool(), units: { [unitId]: {} } });
    const ok = await exportUnit({ ...base, source: source(), staging: staging().provider });
    expect(ok.stats.rowsExported).toBe(10_000);
    await env.query(`UPDATE "${s}".sized SET name = repeat('x', 30000) WHERE id = 4321`);
    const err = await exportUnit({
      ...base,
      kv: new MemoryKvStore(),
      source: source(),
      staging: staging().provider,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'row_rejected' });
    expect(String((err as Error).message)).toMatch(/over 20000 bytes as COPY text, over policy\.maxRowBytes/);
  });
});
