/**
 * Keys compared by the target as the source compares them (ADR 0014): text keys that differ only in trailing spaces,
 * case or Unicode normalization stay distinct rows when merged into a target the sink creates — PostgreSQL →
 * MariaDB, MariaDB → MariaDB, MariaDB → PostgreSQL, PostgreSQL → PostgreSQL — twice (the second merge updates every
 * row in place, adding none). MariaDB's `utf8mb4_bin` is PAD SPACE (`'a' = 'a '`): created text key columns use
 * `utf8mb4_nopad_bin`.
 */

import { describe, expect, it } from 'vitest';
import {
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
  type SinkEndpoint,
  type SourceEndpoint,
} from '../../src/index.js';
import { MySqlSink, MySqlSource } from '../../src/mysql/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const my = useMySql('keys');
const pg = usePostgres('keys');

/** Keys equal under some collation, distinct as code points. */
const KEYS = ['a', 'a ', 'a  ', 'A', '\u00e9', 'e\u0301', 'ss', '\u00df', 'I', '\u0130', ' a'];

async function seedPg(table: string, v: number): Promise<void> {
  await pg.query(`CREATE TABLE IF NOT EXISTS "${pg.schema}".${table} (k text PRIMARY KEY, v integer)`);
  await pg.query(`TRUNCATE "${pg.schema}".${table}`);
  for (const k of KEYS) await pg.query(`INSERT INTO "${pg.schema}".${table} VALUES ($1, $2)`, [k, v]);
}

async function seedMy(table: string, v: number): Promise<void> {
  await my.query(
    `CREATE TABLE IF NOT EXISTS ${table} (k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin PRIMARY KEY, v INT)`,
  );
  await my.query(`DELETE FROM ${table}`);
  for (const k of KEYS) await my.query(`INSERT INTO ${table} VALUES (?, ?)`, [k, v]);
}

const pgKeys = async (table: string) =>
  (await pg.query(`SELECT encode(convert_to(k, 'UTF8'), 'hex') AS k, v FROM "${pg.schema}".${table} ORDER BY 1`)).rows
    .map((r) => `${r.k}=${r.v}`)
    .sort();
const myKeys = async (table: string) =>
  (await my.query<any[]>(`SELECT LOWER(HEX(k)) AS k, v FROM ${table}`)).map((r) => `${r.k}=${r.v}`).sort();
const expected = (v: number) => KEYS.map((k) => `${Buffer.from(k).toString('hex')}=${v}`).sort();

describe.each([
  ['PostgreSQL', 'MariaDB'],
  ['MariaDB', 'MariaDB'],
  ['MariaDB', 'PostgreSQL'],
  ['PostgreSQL', 'PostgreSQL'],
] as const)('merge on a text key, %s → %s (created target)', (from, to) => {
  it('keeps keys that differ only in trailing spaces, case or normalization apart', async () => {
    const src = `src_${from}_${to}`.toLowerCase();
    const dst = `dst_${from}_${to}`.toLowerCase();
    const unitId = from === 'PostgreSQL' ? `${pg.schema}.${src}` : `${my.database}.${src}`;
    const source = (): SourceEndpoint =>
      from === 'PostgreSQL' ? new PostgresSource({ pool: pg.newPool() }) : new MySqlSource({ pool: my.newPool() });
    const sink = (): SinkEndpoint =>
      to === 'PostgreSQL'
        ? new PostgresSink({ pool: pg.newPool(), tables: { [unitId]: `${pg.schema}.${dst}` } })
        : new MySqlSink({ pool: my.newPool(), tables: { [unitId]: dst }, loadMethod: 'insert' });
    for (const v of [1, 2]) {
      if (from === 'PostgreSQL') await seedPg(src, v);
      else await seedMy(src, v);
      const r = await runUnit({
        source: source(),
        sink: sink(),
        staging: new MemoryStagingProvider(),
        kv: new MemoryKvStore(),
        unit: { vendor: from, endpointId: `keys-${v}`, unitId, sinkId: dst },
        mode: 'full',
        disposition: 'merge',
        primaryKey: ['k'],
      });
      expect(r.stats.rowsImported).toBe(KEYS.length);
      expect(to === 'PostgreSQL' ? await pgKeys(dst) : await myKeys(dst)).toEqual(expected(v));
    }
    if (to === 'MariaDB') {
      const [c] = await my.query<any[]>(
        'SELECT COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [my.database, dst, 'k'],
      );
      expect(c.c).toBe('utf8mb4_nopad_bin');
    }
  });
});

describe('merge into a pre-created MariaDB target whose key collation pads or folds case', () => {
  it.each(['utf8mb4_general_ci', 'utf8mb4_bin'])(
    '%s: keys the source holds apart are refused before anything is written',
    async (collation) => {
      const src = `src_pre_${collation}`;
      const dst = `dst_pre_${collation}`;
      await seedPg(src, 1);
      await my.query(
        `CREATE TABLE ${dst} (k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE ${collation} PRIMARY KEY, v INT)`,
      );
      const unitId = `${pg.schema}.${src}`;
      for (const loadMethod of ['insert', 'load-data'] as const) {
        const err = await runUnit({
          source: new PostgresSource({ pool: pg.newPool() }),
          sink: new MySqlSink({ pool: my.newPool(), tables: { [unitId]: dst }, loadMethod }),
          staging: new MemoryStagingProvider(),
          kv: new MemoryKvStore(),
          unit: { vendor: 'postgres', endpointId: `pre-${loadMethod}`, unitId, sinkId: dst },
          mode: 'full',
          disposition: 'merge',
          primaryKey: ['k'],
        }).then(
          () => undefined,
          (e) => e,
        );
        expect(err).toMatchObject({ code: 'row_rejected', details: { column: 'k', slice: 0 } });
        expect(String(err.message)).toContain(collation);
        expect(await my.query(`SELECT CAST(COUNT(*) AS CHAR) AS n FROM ${dst}`)).toEqual([{ n: '0' }]);
      }
      // keys that collide under no collation merge as before
      await pg.query(`DELETE FROM "${pg.schema}".${src} WHERE k NOT IN ('a', 'ss', 'I')`);
      const r = await runUnit({
        source: new PostgresSource({ pool: pg.newPool() }),
        sink: new MySqlSink({ pool: my.newPool(), tables: { [unitId]: dst } }),
        staging: new MemoryStagingProvider(),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'pre-ok', unitId, sinkId: dst },
        mode: 'full',
        disposition: 'merge',
        primaryKey: ['k'],
      });
      expect(r.stats.rowsImported).toBe(3);
      expect(await my.query(`SELECT CAST(COUNT(*) AS CHAR) AS n FROM ${dst}`)).toEqual([{ n: '3' }]);
    },
  );
});
