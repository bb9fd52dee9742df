import { afterAll, describe, expect, it } from 'vitest';
import { MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { MySqlSink } from '../../src/mysql/index.js';
import { PostgresCdcSource } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';

const cluster = useLogicalCluster();
const my = useMySql('cdc');
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers) await c().catch(() => {});
});

describe('PostgresCdcSource → MySqlSink: changes applied in MariaDB', () => {
  it('inserts, updates (TOASTed values unchanged), key moves, deletes and truncates reach the target', async () => {
    const db = cluster.pool();
    await db.query('CREATE SCHEMA app');
    await db.query('CREATE TABLE app.m (id bigint PRIMARY KEY, name text NOT NULL, qty integer, big text)');
    await db.query('ALTER TABLE app.m ALTER COLUMN big SET STORAGE EXTERNAL');
    await db.query('CREATE PUBLICATION pub_m FOR TABLE app.m');
    await db.query(
      "INSERT INTO app.m SELECT g, 'n' || g, g, CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 100) END FROM generate_series(1, 40) g",
    );
    const source = new PostgresCdcSource({
      connectionString: cluster.url,
      publication: 'pub_m',
      slot: 'my',
      units: ['app.m'],
      maxWaitMs: 5_000,
    });
    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'app.m': 'm' } });
    closers.push(
      () => source.close(),
      () => sink.close(),
    );
    const kv = new MemoryKvStore();
    const run = () =>
      runUnit({
        source,
        sink,
        staging: new MemoryStagingProvider(),
        kv,
        unit: { vendor: 'postgres', endpointId: 'cdc-my', unitId: 'app.m' },
        disposition: 'merge',
      });
    const rowsOf = async () => {
      const pg = await db.query(
        "SELECT id::text || '|' || name || '|' || coalesce(qty::text, '-') || '|' || coalesce(md5(big), '-') AS r FROM app.m ORDER BY id",
      );
      const ms = await my.query<any[]>(
        "SELECT CONCAT(id, '|', name, '|', coalesce(qty, '-'), '|', coalesce(md5(big), '-')) AS r FROM m ORDER BY id",
      );
      return { source: pg.rows.map((r) => r.r), target: ms.map((r) => r.r) };
    };

    await run();
    let rows = await rowsOf();
    expect(rows.target).toEqual(rows.source);

    await db.query(`INSERT INTO app.m VALUES (100, 'new', 1, repeat('abc', 2000))`);
    await db.query('UPDATE app.m SET qty = 2 WHERE id = 100'); // same slice as its insert, big unchanged
    await db.query('UPDATE app.m SET qty = -1 WHERE id = 20'); // big unchanged, from the target
    await db.query('UPDATE app.m SET id = 1000, qty = 7 WHERE id = 30'); // key moved, big unchanged
    await db.query('UPDATE app.m SET qty = 8 WHERE id = 1000');
    await db.query('DELETE FROM app.m WHERE id IN (1, 2, 3)');
    await run();
    rows = await rowsOf();
    expect(rows.target).toEqual(rows.source);
    expect(rows.target.find((r) => r.startsWith('1000|'))).not.toMatch(/\|-$/);

    await db.query('TRUNCATE app.m');
    await db.query(`INSERT INTO app.m VALUES (5, 'after', 5, NULL)`);
    await run();
    rows = await rowsOf();
    expect(rows.target).toEqual(['5|after|5|-']);
  });
});
