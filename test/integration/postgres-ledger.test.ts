import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Json, KvEntry, KvKey, KvPutOptions, KvStore, Row } from '../../src/index.js';
import { checkpointKey, IngestError, MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';
import { stageInMemory } from '../helpers/staged.js';

const env = usePostgres('ledger');

/** A KvStore that "crashes" (throws) when the run state would record that the sink returned. */
class CrashAfterImport implements KvStore {
  armed = true;
  constructor(readonly inner: KvStore) {}
  get<T extends Json>(key: KvKey) {
    return this.inner.get<T>(key);
  }
  put<T extends Json>(key: KvKey, value: T, opts?: KvPutOptions): Promise<KvEntry<T>> {
    if (this.armed && key.key.endsWith('::run') && (value as { phase?: string })?.phase === 'imported') {
      return Promise.reject(new Error('simulated crash between sink commit and checkpoint'));
    }
    return this.inner.put(key, value, opts);
  }
  delete(key: KvKey, opts?: { expectedVersion?: number }) {
    return this.inner.delete(key, opts);
  }
  list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }) {
    return this.inner.list(prefix);
  }
}

const count = async (table: string) =>
  (await env.query(`SELECT count(*)::int AS n FROM "${env.schema}"."${table}"`)).rows[0].n as number;

describe('PostgresSink ledger: exactly-once per (run, slice)', () => {
  it('a crash between sink commit and checkpoint: the resumed run re-imports nothing', async () => {
    await env.query(
      `CREATE TABLE "${env.schema}".src (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL)`,
    );
    await env.query(
      `INSERT INTO "${env.schema}".src SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 2000) g`,
    );
    await env.query(`ANALYZE "${env.schema}".src`);
    await env.query(`CREATE TABLE "${env.schema}".dst (id bigint, v text, updated_at timestamptz NOT NULL)`); // no key: duplicates would show
    const unitId = `${env.schema}.src`;
    const pool = env.newPool();
    const kv = new CrashAfterImport(new MemoryKvStore());
    const opts = {
      source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['updated_at'] } } }),
      sink: new PostgresSink({ pool, tables: { [unitId]: `${env.schema}.dst` } }),
      staging: new MemoryStagingProvider(),
      kv,
      unit: { vendor: 'postgres', endpointId: 'pg', unitId },
      mode: 'incremental' as const,
      policy: { sliceMaxRows: 500, retry: { maxAttempts: 1 } },
    };
    const first = await runUnit(opts).catch((e) => e);
    expect(first).toBeInstanceOf(Error);
    expect(await count('dst')).toBe(2000); // the sink committed every slice
    const ck = await kv.get(checkpointKey({ vendor: 'postgres', endpointId: 'pg', unitId }));
    expect(ck?.value ?? null).toBeNull(); // … but the checkpoint did not move
    const { rows: ledger1 } = await env.query(
      `SELECT run_id, slice, rows FROM "public"."_nucleus_ingest_ledger" WHERE unit_id = $1 ORDER BY slice`,
      [unitId],
    );
    expect(ledger1.length).toBeGreaterThanOrEqual(4);

    kv.armed = false;
    const second = await runUnit(opts);
    expect(second.resumed).toBe(true);
    expect(second.runId).toBe(ledger1[0].run_id);
    expect(second.newCheckpoint).toMatchObject({ columns: ['updated_at'] });
    expect(await count('dst')).toBe(2000);
    const { rows: dupes } = await env.query(`SELECT id FROM "${env.schema}".dst GROUP BY id HAVING count(*) > 1`);
    expect(dupes).toEqual([]);
    const { rows: ledger2 } = await env.query(
      `SELECT run_id, slice, rows FROM "public"."_nucleus_ingest_ledger" WHERE unit_id = $1 ORDER BY slice`,
      [unitId],
    );
    expect(ledger2).toEqual(ledger1);
    await env.query(`DELETE FROM "public"."_nucleus_ingest_ledger" WHERE unit_id = $1`, [unitId]);
  });

  const stage = async (rows: Row[], runId: string, slices: number) => {
    const ctx = testContext({ unitId: 'x.items', runId });
    const schema = {
      fields: [
        { name: 'id', type: 'int64' as const, nullable: false },
        { name: 'name', type: 'string' as const, nullable: true },
      ],
      primaryKey: ['id'],
    };
    const { session, desc } = await stageInMemory(ctx, rows, slices, schema);
    return {
      ctx,
      req: (disposition: 'append' | 'replace' | 'merge') => ({
        unitId: 'x.items',
        reader: session.reader(),
        slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
        handles: [],
        schema,
        disposition,
      }),
    };
  };

  for (const disposition of ['append', 'merge', 'replace'] as const) {
    it(`${disposition}: importing the same run twice, even concurrently, lands every row once`, async () => {
      const sink = new PostgresSink({
        pool: env.newPool(),
        schema: env.schema,
        ledgerTable: `${env.schema}.ledger`,
        tables: { 'x.items': `${env.schema}.items_${disposition}` },
      });
      const rows = Array.from({ length: 300 }, (_, i) => ({ id: BigInt(i + 1), name: `n${i}` }));
      const runId = `run-${disposition}`;
      const a = await stage(rows, runId, 3);
      const b = await stage(rows, runId, 3);
      const results = await Promise.all([
        sink.import(a.req(disposition), a.ctx),
        sink.import(b.req(disposition), b.ctx),
      ]);
      expect(await count(`items_${disposition}`)).toBe(300);
      const skipped = results.map((r) => (r.provenance as any).slicesSkipped).sort();
      expect(skipped[0] + skipped[1]).toBe(3);
      const again = await sink.import(a.req(disposition), a.ctx);
      expect(again.rowsImported).toBe(300);
      expect(again.provenance).toMatchObject({ slicesSkipped: 3, slicesCommitted: 0, rowsCommitted: 0 });
      expect(await count(`items_${disposition}`)).toBe(300);
      const { rows: led } = await env.query(
        `SELECT slice, rows FROM "${env.schema}".ledger WHERE run_id = $1 ORDER BY slice`,
        [runId],
      );
      expect(led.map((r) => [r.slice, Number(r.rows)])).toEqual([
        [0, 100],
        [1, 100],
        [2, 100],
      ]);
    });
  }

  it('concurrent imports into a missing target create it once and all land', async () => {
    const sink = new PostgresSink({
      pool: env.newPool({ max: 20 }),
      schema: env.schema,
      ledgerTable: `${env.schema}.ledger_new`,
      tables: { 'x.items': `${env.schema}.items_created` },
    });
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, r) =>
        stage(
          Array.from({ length: 50 }, (_, i) => ({ id: BigInt(r * 1000 + i), name: `r${r}` })),
          `run-create-${r}`,
          2,
        ),
      ),
    );
    await Promise.all(runs.map((s) => sink.import(s.req('append'), s.ctx)));
    expect(await count('items_created')).toBe(300);
  });

  it('replace: readers never see an empty or partial table while a replace loads', async () => {
    const table = `"${env.schema}".items_replace`;
    const sink = new PostgresSink({
      pool: env.newPool(),
      schema: env.schema,
      ledgerTable: `${env.schema}.ledger`,
      tables: { 'x.items': `${env.schema}.items_replace` },
    });
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: BigInt(i + 1), name: `new${i}` }));
    const s = await stage(rows, 'run-replace-2', 4);
    const seen = new Set<number>();
    let done = false;
    const reader = (async () => {
      while (!done) {
        const { rows: r } = await env.query(`SELECT count(*)::int AS n FROM ${table}`);
        seen.add(r[0].n);
      }
    })();
    await sink.import(s.req('replace'), s.ctx);
    done = true;
    await reader;
    expect(seen.size).toBeGreaterThan(0);
    expect([...seen].every((n) => n === 300 || n === 20_000)).toBe(true);
    expect(await count('items_replace')).toBe(20_000);
  });

  for (const outcome of ['rolls back', 'commits'] as const) {
    it(`a claim blocked by a paused holder's open slice transaction fails fast with sink_busy; after the holder ${outcome}, the retry lands every row once`, async () => {
      const target = `items_busy_${outcome === 'commits' ? 'c' : 'r'}`;
      const sink = new PostgresSink({
        pool: env.newPool(),
        schema: env.schema,
        ledgerTable: `${env.schema}.ledger_busy`,
        tables: { 'x.items': `${env.schema}.${target}` },
        ledgerLockTimeoutMs: 300,
      });
      const runId = `run-busy-${outcome === 'commits' ? 'c' : 'r'}`;
      const rows = Array.from({ length: 300 }, (_, i) => ({ id: BigInt(i + 1), name: `n${i}` }));
      const warm = await stage(rows.slice(0, 3), `${runId}-warm`, 1);
      await sink.import(warm.req('append'), warm.ctx); // creates the ledger and the target
      await env.query(`TRUNCATE "${env.schema}".${target}`);
      const s = await stage(rows, runId, 3);

      // the "paused holder": it claimed slice 1 and loaded its rows in a transaction it has not finished
      const holder = new pg.Client({ connectionString: env.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(
          `INSERT INTO "${env.schema}".ledger_busy (run_id, unit_id, slice, target, disposition, rows) VALUES ($1, 'x.items', 1, $2, 'append', 100)`,
          [runId, `${env.schema}.${target}`],
        );
        await holder.query(
          `INSERT INTO "${env.schema}".${target} SELECT g, 'n' || (g - 1) FROM generate_series(101, 200) g`,
        );
        const started = Date.now();
        const err = await sink.import(s.req('append'), s.ctx).catch((e) => e);
        const waited = Date.now() - started;
        expect(IngestError.is(err, 'sink_busy')).toBe(true);
        expect(err.retryable).toBe(true);
        expect(err.message).toContain(runId);
        expect(err.details).toMatchObject({ slices: [1], runId });
        expect(waited).toBeLessThan(5_000);
        await holder.query(outcome === 'commits' ? 'COMMIT' : 'ROLLBACK');
      } finally {
        await holder.end();
      }
      const again = await sink.import(s.req('append'), s.ctx);
      // slices the first attempt committed before it met the busy one are skipped, and so is the holder's once it commits
      const p = again.provenance as { slicesSkipped: number; slicesCommitted: number };
      expect(p.slicesSkipped + p.slicesCommitted).toBe(3);
      expect(p.slicesSkipped).toBeGreaterThanOrEqual(outcome === 'commits' ? 1 : 0);
      expect(await count(target)).toBe(300);
      const { rows: dupes } = await env.query(
        `SELECT id FROM "${env.schema}".${target} GROUP BY id HAVING count(*) > 1`,
      );
      expect(dupes).toEqual([]);
    });
  }
});
