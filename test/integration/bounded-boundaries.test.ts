/**
 * Bounded checkpoints (docs/decisions/0005-incremental-boundaries.md, "Amendment: bounded checkpoints"), on both
 * engines: a tie group larger than the fingerprint budget is kept by its greatest key, so the checkpoint, the run state
 * and the receipt stay under 4 KiB whatever the ties; rows updated later and late ties above that key are read, a late
 * tie below it is not (the documented limit); below the budget the exact late-tie guarantee holds; a unit without a key
 * is refused; a version-2 checkpoint with a large fingerprint set still resumes exactly. The budget is lowered for most
 * scenarios (`boundaryLimits`); one scenario per engine runs 150,000 ties at the real budget.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  checkpointKey,
  type Json,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type ReadRequest,
  runUnit,
  type SliceSpec,
  type SourceEndpoint,
} from '../../src/index.js';
import { MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { receiptKey, runStateKey } from '../../src/pipeline/keys.js';
import { PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { boundaryLimits } from '../../src/sql/boundary.js';
import type { SqlCheckpoint, SqlUnitConfig } from '../../src/sql/source-config.js';
import { MemorySink, testContext } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const pgEnv = usePostgres('tiekey');
const myEnv = useMySql('tiekey');
const BUDGET = boundaryLimits.tieFingerprints;
const tmp = mkdtempSync(join(tmpdir(), 'tiekey-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  boundaryLimits.tieFingerprints = BUDGET;
});

interface Engine {
  name: 'postgres' | 'mariadb';
  exec(sql: string): Promise<void>;
  /** Qualified table name for SQL, and the unit id. */
  table(name: string): { sql: string; unitId: string };
  /** `FROM …` giving column `g` = from…to. */
  series(from: number, to: number): string;
  source(units: Record<string, SqlUnitConfig>): PostgresSource | MySqlSource;
  /** `(id, v)` of every row, as text. */
  rows(table: string): Promise<string[]>;
}

const engines: Engine[] = [
  {
    name: 'postgres',
    exec: async (sql) => void (await pgEnv.query(sql)),
    table: (name) => ({ sql: `"${pgEnv.schema}"."${name}"`, unitId: `${pgEnv.schema}.${name}` }),
    series: (a, b) => `FROM generate_series(${a}, ${b}) AS s(g)`,
    source: (units) => new PostgresSource({ pool: pgEnv.newPool({ max: 4 }), units }),
    rows: async (t) => (await pgEnv.query(`SELECT id::text || '/' || v AS k FROM ${t}`)).rows.map((r) => r.k),
  },
  {
    name: 'mariadb',
    exec: async (sql) => void (await myEnv.query(sql)),
    table: (name) => ({ sql: `\`${myEnv.database}\`.\`${name}\``, unitId: `${myEnv.database}.${name}` }),
    series: (a, b) => `FROM (SELECT seq AS g FROM seq_${a}_to_${b}) s`,
    source: (units) => new MySqlSource({ pool: myEnv.newPool({ connectionLimit: 4 }), units }),
    rows: async (t) => (await myEnv.query<any[]>(`SELECT CONCAT(id, '/', v) AS k FROM ${t}`)).map((r) => String(r.k)),
  },
];

/** The source as a pipeline without a planner sees it: one unplanned read. */
function unplanned(source: SourceEndpoint<SqlCheckpoint>): SourceEndpoint<SqlCheckpoint> {
  return {
    descriptor: source.descriptor,
    read: (req: ReadRequest<SqlCheckpoint> & { slice?: SliceSpec }, ctx) => source.read(req, ctx),
  };
}

let seq = 0;

async function setup(
  e: Engine,
  opts: { mode: 'planned' | 'unplanned'; key?: boolean; cfg?: SqlUnitConfig; sliceMaxRows?: number; bytes?: boolean },
) {
  const name = `b${++seq}_${opts.mode}`;
  const t = e.table(name);
  await e.exec(
    `CREATE TABLE ${t.sql} (id int ${opts.key === false ? 'NOT NULL' : 'PRIMARY KEY'}, v varchar(40) NOT NULL, d date)`,
  );
  const source = e.source({ [t.unitId]: { cursorColumns: ['d'], ...opts.cfg } });
  const sink = new MemorySink();
  const kv = new MemoryKvStore();
  // the byte paths (PostgreSQL COPY text, MariaDB LOAD DATA text) read a planned slice without row objects
  const staging = opts.bytes
    ? new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: join(tmp, name) }),
        codec: e.name === 'postgres' ? pgCopyCodec() : mySqlLoadDataCodec(),
      })
    : new MemoryStagingProvider();
  let rowReads = 0;
  const counted: SourceEndpoint<SqlCheckpoint> = {
    descriptor: source.descriptor,
    plan: (req, ctx) => source.plan!(req, ctx),
    read: (req, ctx) => {
      rowReads++;
      return source.read(req, ctx);
    },
    readEncoded: (codec, req, ctx) => source.readEncoded!(codec, req, ctx),
  };
  const unit = { vendor: e.name, endpointId: 'src', unitId: t.unitId };
  const cpKey = checkpointKey(unit);
  const warnings: string[] = [];
  let lastRunId = '';
  const run = async () => {
    if (e.name === 'postgres') await e.exec(`ANALYZE ${t.sql}`);
    const r = await runUnit({
      source: opts.mode === 'planned' ? counted : unplanned(source),
      sink,
      staging,
      kv,
      unit,
      mode: 'incremental',
      logger: { debug() {}, info() {}, error() {}, warn: (m: string) => void warnings.push(m) },
      policy: { sliceMaxRows: opts.sliceMaxRows ?? 40, chunkSize: 25, retry: { maxAttempts: 1 } },
    });
    lastRunId = r.runId;
    return r;
  };
  /** Every current row version is in the sink; none was exported twice. */
  const check = async () => {
    const exported = sink.rows(t.unitId).map((r) => `${String(r.id)}/${String(r.v)}`);
    const counts = new Map<string, number>();
    for (const k of exported) counts.set(k, (counts.get(k) ?? 0) + 1);
    const missing = (await e.rows(t.sql)).filter((k) => !counts.has(k)).sort();
    const twice = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    return { missing, twice };
  };
  const checkpoint = async () => (await kv.get<SqlCheckpoint>(cpKey))?.value ?? null;
  /** JSON bytes of the checkpoint, the run state and the last run's receipt, as the KvStore holds them. */
  const sizes = async () => {
    const bytes = async (k: Parameters<MemoryKvStore['get']>[0]) =>
      Buffer.byteLength(JSON.stringify((await kv.get<Json>(k))?.value ?? null));
    return {
      checkpoint: await bytes(cpKey),
      runState: await bytes(runStateKey(cpKey)),
      receipt: await bytes(receiptKey(runStateKey(cpKey), lastRunId)),
    };
  };
  return { sql: t.sql, unitId: t.unitId, run, check, checkpoint, sizes, warnings, source, rowReads: () => rowReads };
}

const KIB4 = 4096;

describe('bounded checkpoints: tie groups past the fingerprint budget are kept by key', { timeout: 120_000 }, () => {
  for (const e of engines) {
    for (const [mode, bytes] of [
      ['planned', false],
      ['unplanned', false],
      ['planned', true],
    ] as const) {
      it(`${e.name}: 70 ties over a budget of 20 — kept by key; moved rows and later ties above the key are read, a later tie below it is not (${mode}${bytes ? ', byte path' : ''})`, async () => {
        boundaryLimits.tieFingerprints = 20;
        const t = await setup(e, { mode, bytes });
        await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-01' ${e.series(1, 30)}`);
        await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(31, 100)}`);
        expect((await t.run()).stats.rowsExported).toBe(100);
        const ck = await t.checkpoint();
        expect(ck).toMatchObject({
          version: 3,
          values: ['2024-01-02'],
          from: ['2024-01-02'],
          seen: '',
          seenRows: 0,
          byKey: { columns: ['id'], ties: ['100'] },
        });
        expect(t.warnings.join('\n')).toMatch(/70 rows tie at the greatest cursor value.*lower key will not be read/);
        const s = await t.sizes();
        expect(s.checkpoint).toBeLessThan(300);
        // a late tie above the key, a late tie below it (the documented limit), a row moved to a new cursor value,
        // a tie updated in place (kept by key: not read again), a new row
        await e.exec(`INSERT INTO ${t.sql} VALUES (150, 'late-above', DATE '2024-01-02')`);
        await e.exec(`INSERT INTO ${t.sql} VALUES (-5, 'late-below', DATE '2024-01-02')`);
        await e.exec(`UPDATE ${t.sql} SET v = 'moved', d = DATE '2024-01-03' WHERE id = 40`);
        await e.exec(`INSERT INTO ${t.sql} VALUES (200, 'new', DATE '2024-01-03')`);
        expect((await t.run()).stats.rowsExported).toBe(3);
        expect(await t.check()).toEqual({ missing: ['-5/late-below'], twice: [] });
        // two rows at the new greatest value: below the budget, kept by fingerprint again (version 2)
        expect(await t.checkpoint()).toMatchObject({ version: 2, values: ['2024-01-03'], seenRows: 2 });
        expect((await t.checkpoint())?.byKey).toBeUndefined();
        expect((await t.run()).stats.rowsExported).toBe(0);
        if (bytes) expect(t.rowReads()).toBe(0);
      });

      if (bytes) continue;
      it(`${e.name}: a tie group that grows past the budget at the same value switches to key mode exactly, and stays there (${mode})`, async () => {
        boundaryLimits.tieFingerprints = 20;
        const t = await setup(e, { mode });
        await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(11, 25)}`);
        expect((await t.run()).stats.rowsExported).toBe(15);
        expect(await t.checkpoint()).toMatchObject({ version: 2, seenRows: 15 });
        // below the budget the guarantee is exact: late ties with lower keys and in-place updates are read
        await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('low', g), DATE '2024-01-02' ${e.series(1, 3)}`);
        await e.exec(`UPDATE ${t.sql} SET v = 'upd' WHERE id = 20`);
        expect((await t.run()).stats.rowsExported).toBe(4);
        expect(await t.check()).toEqual({ missing: [], twice: [] });
        // 18 ties + 10 more: past the budget; every new tie is read (the old checkpoint holds fingerprints)
        await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('w', g), DATE '2024-01-02' ${e.series(26, 34)}`);
        await e.exec(`INSERT INTO ${t.sql} VALUES (4, 'low4', DATE '2024-01-02')`);
        expect((await t.run()).stats.rowsExported).toBe(10);
        expect(await t.check()).toEqual({ missing: [], twice: [] });
        expect(await t.checkpoint()).toMatchObject({ version: 3, byKey: { ties: ['34'] }, seen: '' });
        // key mode at the same value: a tie above the key is read once
        await e.exec(`INSERT INTO ${t.sql} VALUES (35, 'above', DATE '2024-01-02')`);
        expect((await t.run()).stats.rowsExported).toBe(1);
        expect(await t.checkpoint()).toMatchObject({ version: 3, byKey: { ties: ['35'] } });
        expect((await t.run()).stats.rowsExported).toBe(0);
        expect(await t.check()).toEqual({ missing: [], twice: [] });
      });
    }

    it(`${e.name}: a planned slice reads a group kept by key up to the key the plan saw; a tie committed after the plan waits for the next run`, async () => {
      boundaryLimits.tieFingerprints = 20;
      const t = await setup(e, { mode: 'planned' });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(1, 50)}`);
      const ctx = testContext({ unitId: t.unitId });
      const source = t.source as SourceEndpoint<SqlCheckpoint> & Required<Pick<SourceEndpoint<SqlCheckpoint>, 'plan'>>;
      const readPlan = async (checkpoint: SqlCheckpoint | null) => {
        const plan = (await source.plan(
          { unitId: t.unitId, mode: 'incremental', checkpoint, hints: { sliceMaxRows: 20 } },
          ctx,
        ))!;
        // committed between the plan and its slices: a tie above the key the plan saw
        await e.exec(
          `INSERT INTO ${t.sql} VALUES (${1000 + Number(checkpoint !== null)}, 'after-plan', DATE '2024-01-02')`,
        );
        const ids: number[] = [];
        for (const slice of plan.slices)
          for await (const b of source.read({ unitId: t.unitId, mode: 'incremental', checkpoint, slice }, ctx))
            ids.push(...b.rows.map((r) => Number(r.id)));
        return { plan, ids: ids.sort((a, b) => a - b) };
      };
      const first = await readPlan(null);
      expect(first.plan.slices.length).toBeGreaterThan(1);
      expect(first.plan.checkpoint).toMatchObject({ version: 3, byKey: { ties: ['50'] } });
      expect(first.ids).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const second = await readPlan(first.plan.checkpoint as SqlCheckpoint);
      expect(second.ids).toEqual([1000]);
      expect(second.plan.checkpoint).toMatchObject({ byKey: { ties: ['1000'] } });
    });

    it(`${e.name}: NULL-cursor rows past the budget are kept by key too; the ties stay fingerprinted`, async () => {
      boundaryLimits.tieFingerprints = 20;
      const t = await setup(e, { mode: 'planned' });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('n', g), NULL ${e.series(1, 30)}`);
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(31, 35)}`);
      expect((await t.run()).stats.rowsExported).toBe(35);
      expect(await t.checkpoint()).toMatchObject({ version: 3, seenRows: 5, byKey: { special: ['30'] } });
      await e.exec(`INSERT INTO ${t.sql} VALUES (36, 'null-above', NULL), (0, 'null-below', NULL)`);
      await e.exec(`INSERT INTO ${t.sql} VALUES (-1, 'tie-below', DATE '2024-01-02')`);
      expect((await t.run()).stats.rowsExported).toBe(2);
      expect(await t.check()).toEqual({ missing: ['0/null-below'], twice: [] });
      expect((await t.run()).stats.rowsExported).toBe(0);
    });

    it(`${e.name}: a unit without a key whose ties pass the budget is refused with config_invalid naming primaryKey`, async () => {
      boundaryLimits.tieFingerprints = 20;
      const t = await setup(e, { mode: 'planned', key: false });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(1, 30)}`);
      const err = await t.run().catch((x) => x);
      expect(err).toMatchObject({ code: 'config_invalid', retryable: false });
      expect(err.message).toContain(`units["${t.unitId}"].primaryKey`);
      expect(await t.checkpoint()).toBeNull();
      // naming a key is the way out
      const u = await setup(e, { mode: 'planned', key: false, cfg: { primaryKey: ['id'] } });
      await e.exec(`INSERT INTO ${u.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(1, 30)}`);
      expect((await u.run()).stats.rowsExported).toBe(30);
      expect(await u.checkpoint()).toMatchObject({ byKey: { ties: ['30'] } });
    });

    it(`${e.name}: a version-2 checkpoint holding more fingerprints than the budget still resumes exactly`, async () => {
      // written as this library wrote it before the amendment: every tie by fingerprint
      boundaryLimits.tieFingerprints = 1_000_000;
      const t = await setup(e, { mode: 'planned' });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(11, 90)}`);
      expect((await t.run()).stats.rowsExported).toBe(80);
      const old = await t.checkpoint();
      expect(old).toMatchObject({ version: 2, seenRows: 80 });
      expect(Object.keys(old!).sort()).toEqual([
        'columns',
        'fingerprint',
        'from',
        'seen',
        'seenRows',
        'values',
        'version',
      ]);
      boundaryLimits.tieFingerprints = 20;
      await e.exec(
        `INSERT INTO ${t.sql} VALUES (5, 'late-below', DATE '2024-01-02'), (95, 'late-above', DATE '2024-01-02')`,
      );
      await e.exec(`UPDATE ${t.sql} SET v = 'upd' WHERE id = 50`);
      expect((await t.run()).stats.rowsExported).toBe(3);
      expect(await t.check()).toEqual({ missing: [], twice: [] });
      expect(await t.checkpoint()).toMatchObject({ version: 3, seen: '', byKey: { ties: ['95'] } });
    });
  }

  it('mariadb: the key order is the column collation (case-insensitive, PAD SPACE), on both sides of the compare', async () => {
    boundaryLimits.tieFingerprints = 5;
    const t = myEnv.database;
    await myEnv.query(
      `CREATE TABLE \`${t}\`.coll (k varchar(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v varchar(20) NOT NULL, d date NOT NULL)`,
    );
    await myEnv.query(
      `INSERT INTO \`${t}\`.coll VALUES ('a1','x','2024-01-02'),('B2','x','2024-01-02'),('c3','x','2024-01-02'),('d4','x','2024-01-02'),('e5','x','2024-01-02'),('y9','x','2024-01-02')`,
    );
    const unitId = `${t}.coll`;
    const source = new MySqlSource({ pool: myEnv.newPool(), units: { [unitId]: { cursorColumns: ['d'] } } });
    const sink = new MemorySink();
    const kv = new MemoryKvStore();
    const unit = { vendor: 'mariadb', endpointId: 'src', unitId };
    const run = () => runUnit({ source, sink, staging: new MemoryStagingProvider(), kv, unit, mode: 'incremental' });
    expect((await run()).stats.rowsExported).toBe(6);
    expect((await kv.get<SqlCheckpoint>(checkpointKey(unit)))?.value).toMatchObject({ byKey: { ties: ['y9'] } });
    // 'Z1' > 'y9' in the column's collation (a byte order would put 'Z' below 'y'); 'x1' < 'y9' is the limit
    await myEnv.query(`INSERT INTO \`${t}\`.coll VALUES ('Z1','late','2024-01-02'),('x1','late','2024-01-02')`);
    await run();
    expect(sink.rows(unitId).map((r) => r.k)).toContain('Z1');
    expect(sink.rows(unitId).map((r) => r.k)).not.toContain('x1');
    await source.close();
  });
});

describe('bounded checkpoints at full size', { timeout: 120_000 }, () => {
  for (const e of engines) {
    it(`${e.name}: at the budget (${BUDGET} ties kept by fingerprint, the largest such checkpoint), planned in slices, each stored entry is ≤ 4 KiB; one more tie switches to key mode`, async () => {
      const t = await setup(e, { mode: 'planned', sliceMaxRows: 60 });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-01' ${e.series(1, 100)}`);
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(101, 100 + BUDGET)}`);
      const first = await t.run();
      expect(first.stats.slices).toBeGreaterThan(2);
      expect(await t.checkpoint()).toMatchObject({ version: 2, seenRows: BUDGET });
      const s = await t.sizes();
      console.log(`${e.name}: ${BUDGET} ties by fingerprint: sizes ${JSON.stringify(s)}`);
      expect(Math.max(s.checkpoint, s.runState, s.receipt)).toBeLessThanOrEqual(KIB4);
      await e.exec(`INSERT INTO ${t.sql} VALUES (1000, 'one-more', DATE '2024-01-02')`);
      expect((await t.run()).stats.rowsExported).toBe(1);
      expect(await t.checkpoint()).toMatchObject({ version: 3, seen: '', byKey: { ties: ['1000'] } });
    });

    it(`${e.name}: 150,000 rows sharing one cursor value — checkpoint, run state and receipt each ≤ 4 KiB; the next runs export nothing twice and miss nothing still present`, async () => {
      const t = await setup(e, { mode: 'planned', sliceMaxRows: 500_000 });
      await e.exec(`INSERT INTO ${t.sql} SELECT g, CONCAT('v', g), DATE '2024-01-02' ${e.series(1, 150_000)}`);
      const started = Date.now();
      expect((await t.run()).stats.rowsExported).toBe(150_000);
      const s = await t.sizes();
      console.log(`${e.name}: 150,000 ties: first run ${Date.now() - started} ms, sizes ${JSON.stringify(s)}`);
      expect(s.checkpoint).toBeLessThanOrEqual(KIB4);
      expect(s.runState).toBeLessThanOrEqual(KIB4);
      expect(s.receipt).toBeLessThanOrEqual(KIB4);
      expect(await t.checkpoint()).toMatchObject({ version: 3, byKey: { ties: ['150000'] } });
      await e.exec(`INSERT INTO ${t.sql} VALUES (150001, 'late-above', DATE '2024-01-02')`);
      await e.exec(`UPDATE ${t.sql} SET v = 'moved', d = DATE '2024-01-03' WHERE id IN (7, 70000)`);
      expect((await t.run()).stats.rowsExported).toBe(3);
      expect(await t.check()).toEqual({ missing: [], twice: [] });
      expect((await t.run()).stats.rowsExported).toBe(0);
      const after = await t.sizes();
      expect(Math.max(after.checkpoint, after.runState, after.receipt)).toBeLessThanOrEqual(KIB4);
    });
  }
});
