import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
  type SchemaContract,
} from '../../src/index.js';
import { PostgresCdcSource, PostgresSink } from '../../src/postgres/index.js';
import { diffAsText } from '../helpers/cdc.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';

const cluster = useLogicalCluster();
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

function setup(name: string) {
  const unitId = `app.${name}`;
  const source = new PostgresCdcSource({
    connectionString: cluster.url,
    publication: `pub_${name}`,
    slot: 'nucleus',
    units: [unitId],
    batchRows: 50,
    maxWaitMs: 5_000,
  });
  const sink = new PostgresSink({ connectionString: cluster.url, schema: 'tgt' });
  closers.push(
    () => source.close(),
    () => sink.close(),
  );
  const kv = new MemoryKvStore();
  const events: IngestionEvent[] = [];
  const run = (schemaContract?: SchemaContract) =>
    runUnit({
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { vendor: 'postgres', endpointId: 'cdc', unitId },
      disposition: 'merge',
      policy: { retry: { maxAttempts: 1 } },
      ...(schemaContract && { schemaContract }),
      onEvent: (e: IngestionEvent) => events.push(e),
    });
  return { unitId, source, run, events, table: `app.${name}`, target: `tgt.${name}` };
}

async function drain(run: () => Promise<{ stats: { rowsExported: number } }>, max = 30) {
  for (let i = 0; i < max; i++) if ((await run()).stats.rowsExported === 0) return;
  throw new Error('did not catch up');
}

/** A writer that inserts and updates in small transactions until stopped; `cols` says which columns exist. */
function writer(db: pg.Pool, table: string, state: { extra: boolean; stop: boolean; next: number }) {
  return (async () => {
    const c = await db.connect();
    try {
      while (!state.stop) {
        const id = state.next++;
        await c.query('BEGIN');
        try {
          if (state.extra)
            await c.query(`INSERT INTO ${table} (id, name, extra) VALUES ($1::bigint, 'w', 'x' || $1::text)`, [id]);
          else await c.query(`INSERT INTO ${table} (id, name) VALUES ($1, 'w')`, [id]);
          await c.query(`UPDATE ${table} SET name = name || '+' WHERE id = $1`, [id - 3]);
          if (id % 7 === 0) await c.query(`DELETE FROM ${table} WHERE id = $1`, [id - 5]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      c.release();
    }
  })();
}

async function createTable(db: pg.Pool, name: string) {
  await db.query(`CREATE TABLE app.${name} (id bigint PRIMARY KEY, name text NOT NULL)`);
  await db.query(`CREATE PUBLICATION pub_${name} FOR TABLE app.${name}`);
  await db.query(`INSERT INTO app.${name} SELECT g, 'n' || g FROM generate_series(1, 200) g`);
}

describe('PostgresCdcSource: a relation whose columns changed goes through the schema contract', () => {
  let db: pg.Pool;
  beforeAll(async () => {
    db = cluster.pool();
    await db.query('CREATE SCHEMA app');
  });

  it('evolve: ALTER TABLE … ADD COLUMN while changes flow; the target gains the column, nothing lost', async () => {
    const t = setup('evolve');
    await createTable(db, 'evolve');
    await t.run();
    const state = { extra: false, stop: false, next: 1000 };
    const w = writer(db, t.table, state);
    await new Promise((r) => setTimeout(r, 300));
    await t.run();
    await new Promise((r) => setTimeout(r, 200));
    await db.query(`ALTER TABLE ${t.table} ADD COLUMN extra text`);
    state.extra = true;
    await new Promise((r) => setTimeout(r, 300));
    await t.run();
    await new Promise((r) => setTimeout(r, 200));
    state.stop = true;
    await w;
    await db.query(`UPDATE ${t.table} SET extra = 'upd' WHERE id = 5`);
    await drain(() => t.run());
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
    const cols = await db.query(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'tgt' AND table_name = 'evolve' ORDER BY ordinal_position",
    );
    expect(cols.rows.map((r) => r.column_name)).toEqual(['id', 'name', 'extra']);
    const changed = t.events.filter((e) => e.type === 'schema.changed');
    expect(changed.length).toBeGreaterThanOrEqual(1);
  });

  it("freeze: schema_conflict names the column, the slot stays; relaxed to 'evolve', nothing is lost", async () => {
    const t = setup('freeze');
    await createTable(db, 'freeze');
    await t.run('freeze');
    await db.query(`UPDATE ${t.table} SET name = 'before' WHERE id <= 10`);
    await t.run('freeze');
    const state = { extra: false, stop: false, next: 1000 };
    const w = writer(db, t.table, state);
    await new Promise((r) => setTimeout(r, 200));
    await db.query(`ALTER TABLE ${t.table} ADD COLUMN extra text`);
    state.extra = true;
    await new Promise((r) => setTimeout(r, 200));
    state.stop = true;
    await w;
    // the changes before the ALTER load under freeze; the run that meets the new column fails
    let err: unknown;
    for (let i = 0; i < 10 && !err; i++) {
      err = await t.run('freeze').then(
        () => undefined,
        (e) => e,
      );
    }
    expect(IngestError.is(err, 'schema_conflict')).toBe(true);
    expect((err as Error).message).toContain('extra');
    const [before] = await t.source.status();
    const again = await t.run('freeze').catch((e) => e);
    expect(IngestError.is(again, 'schema_conflict')).toBe(true);
    const [after] = await t.source.status();
    expect(after.confirmedFlushLsn).toBe(before.confirmedFlushLsn);
    // the target does not have the column yet
    const cols = await db.query(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'tgt' AND table_name = 'freeze' AND column_name = 'extra'",
    );
    expect(cols.rows[0].n).toBe(0);
    await drain(() => t.run('evolve'));
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
  });

  it.each(['evolve', 'freeze'] as const)(
    '%s: one transaction writes rows before and after ADD COLUMN (the first of a run)',
    async (contract) => {
      const name = `mixed_${contract}`;
      const t = setup(name);
      await createTable(db, name);
      await t.run(contract);
      const c = await db.connect();
      try {
        await c.query('BEGIN');
        await c.query(`INSERT INTO ${t.table} (id, name) VALUES (500, 'old')`);
        await c.query(`UPDATE ${t.table} SET name = 'old+' WHERE id = 1`);
        await c.query(`ALTER TABLE ${t.table} ADD COLUMN extra text`);
        await c.query(`INSERT INTO ${t.table} (id, name, extra) VALUES (501, 'new', 'e501')`);
        await c.query(`UPDATE ${t.table} SET extra = 'e2' WHERE id = 2`);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      if (contract === 'freeze') {
        const err = await t.run('freeze').catch((e) => e);
        expect(IngestError.is(err, 'schema_conflict')).toBe(true);
        expect((err as Error).message).toContain('extra');
      }
      await drain(() => t.run('evolve'));
      expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
    },
  );

  it('evolve: a transaction larger than batchRows adds a column after its first batch; nothing lost', async () => {
    const t = setup('large');
    await createTable(db, 'large');
    await t.run();
    const c = await db.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${t.table} (id, name) SELECT g, 'old' FROM generate_series(1000, 1119) g`);
      await c.query(`ALTER TABLE ${t.table} ADD COLUMN extra text`);
      await c.query(
        `INSERT INTO ${t.table} (id, name, extra) SELECT g, 'new', 'e' || g FROM generate_series(2000, 2119) g`,
      );
      await c.query(`UPDATE ${t.table} SET extra = 'u' WHERE id <= 3`);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    // the first attempt meets the change after a batch of 50 and fails retryable; the next reads the transaction whole
    const first = await t.run('evolve').catch((e) => e);
    expect(IngestError.is(first, 'source_failed') && first.retryable).toBe(true);
    await drain(() => t.run('evolve'));
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
  });
});
