/**
 * Both MySQL load methods give the same result for the same rows (ADR 0014): PostgreSQL → staging → a pre-created
 * MariaDB target, one value per case that the target cannot hold as it is. LOAD DATA and INSERT both refuse it with
 * `row_rejected` naming column, slice and row — no silent rounding of a DECIMAL's extra decimals (a MariaDB *note*),
 * no NaN/±Infinity inside an array turned into JSON `null` — and the target keeps none of the slice's rows.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { MySqlSink, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { PostgresSource } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const my = useMySql('loadm');
const pg = usePostgres('loadm');

/** Case → [PostgreSQL type, MariaDB type, two values that fit, one that does not]. */
const CASES: Record<string, [string, string, [string, string], string]> = {
  decimal_rounds: ['numeric', 'DECIMAL(10,2)', ['1.25', '-99999999.99'], '1e-100'],
  decimal_half_cent: ['numeric(12,3)', 'DECIMAL(10,2)', ['1.250', '2.000'], '0.005'],
  decimal_nan: ['numeric', 'DECIMAL(10,2)', ['1', '2'], 'NaN'],
  decimal_too_big: ['numeric', 'DECIMAL(10,2)', ['1', '2'], '100000000'],
  int_overflow: ['bigint', 'INT', ['1', '-2147483648'], '2147483648'],
  text_too_long: ['text', 'VARCHAR(3)', ['abc', ''], 'abcd'],
  datetime_range: ['timestamp', 'DATETIME(6)', ['0001-01-01 00:00:00', '9999-12-31 23:59:59.999999'], '10000-01-01'],
  datetime_bc: ['timestamp', 'DATETIME(6)', ['0001-01-01 00:00:00', '1000-01-01'], '0002-12-31 23:59:59 BC'],
  datetime_infinity: ['timestamp', 'DATETIME(6)', ['2024-01-01', '2024-01-02'], 'infinity'],
  double_nan: ['double precision', 'DOUBLE', ['1', '-0'], 'NaN'],
  float_range: ['double precision', 'FLOAT', ['1', '3.4028234663852886e38'], '1e39'],
  array_nan: ['double precision[]', 'LONGTEXT', ['{1,2}', '{}'], '{1,NaN}'],
  array_infinity: ['double precision[]', 'LONGTEXT', ['{1}', '{NULL}'], '{{1},{-Infinity}}'],
  array_bounds: ['integer[]', 'JSON', ['{1,2}', '{{1},{NULL}}'], '[0:2]={1,2,3}'],
  enum_label: ['text', "ENUM('a','b')", ['a', 'b'], 'c'],
  time_range: ['interval', 'TIME', ['838:59:59', '-838:59:59'], '839:00:00'],
};

describe.each([
  ['ndjson', 'insert'],
  ['ndjson', 'load-data'],
  ['mysql-tsv', 'insert'],
  ['mysql-tsv', 'load-data'],
] as const)('PostgreSQL → MariaDB (%s staging, %s): a value the target cannot hold is refused', (codec, loadMethod) => {
  it.each(Object.keys(CASES))('%s', async (name) => {
    const [pgType, myType, good, bad] = CASES[name];
    const table = `${name}_${codec.replace('-', '_')}_${loadMethod.replace('-', '_')}`;
    await pg.query(`CREATE TABLE "${pg.schema}".${table} (id integer PRIMARY KEY, v ${pgType})`);
    await pg.query(`INSERT INTO "${pg.schema}".${table} VALUES (1, $1), (2, $2), (3, $3)`, [...good, bad]);
    await my.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v ${myType})`);
    const unitId = `${pg.schema}.${table}`;
    const run = (rows: 'all' | 'good') =>
      runUnit({
        source: new PostgresSource({ pool: pg.newPool() }),
        sink: new MySqlSink({ pool: my.newPool(), tables: { [unitId]: table }, loadMethod }),
        staging: new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'loadm-')) }),
          codec: codec === 'mysql-tsv' ? mySqlLoadDataCodec() : 'ndjson',
        }),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: `lm-${rows}`, unitId, sinkId: table },
        mode: 'full',
      });
    const err = await run('all').then(
      () => undefined,
      (e) => e,
    );
    expect(err, `${name}: the run succeeded`).toBeDefined();
    // the codec may refuse the value while staging (mysql-tsv has no text for NaN): also row_rejected, naming it
    expect(err).toMatchObject({ code: 'row_rejected' });
    expect(String(err.message)).toContain('"v"');
    if (err.details?.slice !== undefined) expect(err.details).toMatchObject({ slice: 0, row: 3, column: 'v' });
    expect(await my.query(`SELECT CAST(COUNT(*) AS CHAR) AS n FROM ${table}`)).toEqual([{ n: '0' }]);
    // the rows that fit load, and read back as PostgreSQL prints them
    await pg.query(`DELETE FROM "${pg.schema}".${table} WHERE id = 3`);
    await run('good');
    const rows = await my.query<any[]>(`SELECT id, CAST(v AS CHAR) AS v FROM ${table} ORDER BY id`);
    expect(rows.length).toBe(2);
  });
});
