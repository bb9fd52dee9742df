/**
 * Corrupt and missing staged data through the whole pipeline: `exportUnit` (PostgreSQL source → filesystem
 * staging), damage to the sealed session, then `importUnit` into the PostgreSQL sink. The import fails with
 * `staging_corrupt` before the sink commits anything (the pipeline verifies the whole session first — see
 * `StagingSession.verify`), so no row of the session reaches the target; the checkpoint does not move, and a
 * retry does not "succeed" with fewer rows.
 */
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { checkpointKey, exportUnit, IngestError, importUnit, ObjectStoreStagingProvider } from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { recordFigures } from './harness.js';

const env = usePostgres('rel_corrupt');
const root = mkdtempSync(join(tmpdir(), 'nucleus-corrupt-'));
let kv: PostgresKvStore;
const figures = { cases: [] as string[], stagingCorrupt: 0, rowsFromDamagedSlices: 0, checkpointMoves: 0 };

beforeAll(async () => {
  kv = new PostgresKvStore({ db: env.newKysely(), schema: env.schema });
  await kv.migrate();
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  recordFigures('corrupt-staging', figures);
});

/** Each case gets its own source table, target table and unit. */
async function prepare(name: string) {
  const s = env.schema;
  await env.query(`CREATE TABLE "${s}"."src_${name}" (seq bigint PRIMARY KEY, payload text)`);
  await env.query(`CREATE TABLE "${s}"."dst_${name}" (seq bigint NOT NULL, payload text)`);
  await env.query(`CREATE TABLE IF NOT EXISTS "${s}".src (seq bigint PRIMARY KEY, payload text)`);
  await env.query(
    `INSERT INTO "${s}"."src_${name}" SELECT g, repeat(md5(g::text), 4) FROM generate_series(1000001, 1006000) g`,
  );
  const unitId = `${s}.src_${name}`;
  const unit = { vendor: 'postgres', endpointId: 'corrupt', unitId, sinkId: 'pg' };
  const staging = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) });
  const base = {
    staging,
    kv,
    unit,
    mode: 'incremental' as const,
    policy: { sliceMaxRows: 2000, chunkSize: 500, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
  };
  const exported = await exportUnit({
    ...base,
    source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['seq'] } } }),
  });
  const runDir = join(root, exported.sessionRef.sessionId as string);
  const slices = readdirSync(runDir)
    .filter((f) => /^\d{6}\.ndjson$/.test(f))
    .sort();
  expect(slices.length).toBeGreaterThanOrEqual(3);
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as {
    slices: Array<{ index: number; key: string; rows: number; sha256: string }>;
  };
  const importIt = () =>
    importUnit({
      ...base,
      sink: new PostgresSink({ pool: env.newPool({ max: 2 }), schema: s, tables: { [unitId]: `${s}.dst_${name}` } }),
      disposition: 'append',
    });
  const slice1Seqs = async () => {
    const lines = readFileSync(join(root, manifest.slices.find((x) => x.index === 1)!.key), 'utf8')
      .split('\n')
      .filter(Boolean);
    return lines.map((l) => Number(String(JSON.parse(l).seq).replace(/\D/g, '')));
  };
  const seqsOfSlice1 = await slice1Seqs().catch(() => [] as number[]);
  return { runDir, slices, manifest, importIt, unit, seqsOfSlice1, target: `"${s}"."dst_${name}"` };
}

async function expectCorrupt(
  name: string,
  c: Awaited<ReturnType<typeof prepare>>,
  opts: { nothingCommitted: boolean },
) {
  const before = await kv.get(checkpointKey(c.unit));
  for (let attempt = 1; attempt <= 2; attempt++) {
    const err = await c.importIt().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `${name}: import attempt ${attempt} must fail`).toBeInstanceOf(IngestError);
    expect((err as IngestError).code, `${name}: ${(err as Error).message}`).toBe('staging_corrupt');
    figures.stagingCorrupt++;
  }
  const after = await kv.get(checkpointKey(c.unit));
  expect(after?.version ?? null, `${name}: the checkpoint must not move`).toBe(before?.version ?? null);
  if (after?.version !== before?.version) figures.checkpointMoves++;
  const rows = (await env.query(`SELECT count(*)::int AS n FROM ${c.target}`)).rows[0].n as number;
  if (c.seqsOfSlice1.length) {
    const damaged = (
      await env.query(`SELECT count(*)::int AS n FROM ${c.target} WHERE seq = ANY($1::bigint[])`, [c.seqsOfSlice1])
    ).rows[0].n as number;
    figures.rowsFromDamagedSlices += damaged;
    expect(damaged, `${name}: rows of the damaged slice reached the target`).toBe(0);
  }
  if (opts.nothingCommitted)
    expect(rows, `${name}: the sink committed ${rows} rows of a session that fails verification`).toBe(0);
  figures.cases.push(name);
}

describe('damaged staging stops the import before the sink commits it', () => {
  it('a truncated slice', async () => {
    const c = await prepare('truncated');
    const f = join(c.runDir, c.slices[1]);
    truncateSync(f, Math.floor(readFileSync(f).length / 2));
    await expectCorrupt('truncated slice', c, { nothingCommitted: true });
  }, 120_000);

  it('a flipped byte in the middle of a slice', async () => {
    const c = await prepare('flipped');
    const f = join(c.runDir, c.slices[1]);
    const buf = readFileSync(f);
    const i = buf.indexOf('"payload"', Math.floor(buf.length / 2)) + 12;
    buf[i] = buf[i] === 0x61 ? 0x62 : 0x61;
    writeFileSync(f, buf);
    await expectCorrupt('flipped byte', c, { nothingCommitted: true });
  }, 120_000);

  it('a missing slice', async () => {
    const c = await prepare('missing');
    unlinkSync(join(c.runDir, c.slices[1]));
    await expectCorrupt('missing slice', c, { nothingCommitted: true });
  }, 120_000);

  it('an extra slice that is not in the manifest', async () => {
    const c = await prepare('extra');
    const extra = join(c.runDir, '000042.ndjson');
    writeFileSync(extra, readFileSync(join(c.runDir, c.slices[0])));
    appendFileSync(extra, '');
    await expectCorrupt('extra slice', c, { nothingCommitted: true });
  }, 120_000);

  it('a manifest that disagrees with a slice (row count)', async () => {
    const c = await prepare('disagree');
    const m = JSON.parse(readFileSync(join(c.runDir, 'manifest.json'), 'utf8'));
    m.slices.find((x: { index: number }) => x.index === 1).rows += 1;
    writeFileSync(join(c.runDir, 'manifest.json'), JSON.stringify(m));
    await expectCorrupt('manifest disagrees', c, { nothingCommitted: true });
  }, 120_000);

  it('a _SUCCESS marker without a manifest', async () => {
    const c = await prepare('nomanifest');
    unlinkSync(join(c.runDir, 'manifest.json'));
    await expectCorrupt('marker without manifest', c, { nothingCommitted: true });
  }, 120_000);

  it('invalid manifest JSON', async () => {
    const c = await prepare('badjson');
    writeFileSync(join(c.runDir, 'manifest.json'), '{"format": "nucleus.staging.manifest", "slices": [');
    await expectCorrupt('invalid manifest JSON', c, { nothingCommitted: true });
  }, 120_000);
});
