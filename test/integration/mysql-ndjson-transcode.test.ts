/**
 * NDJSON staging from MariaDB without row objects (`MySqlSource.readEncoded('ndjson')`, docs/decisions/0008): the
 * staged bytes must be the row path's, byte for byte, for every type of the matrix, zero dates, and column names
 * whose order in a row object is not the select order (integer-like names, `__proto__`).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { exportUnit, type Logger, MemoryKvStore, ndjsonCodec, ObjectStoreStagingProvider } from '../../src/index.js';
import { MySqlSource } from '../../src/mysql/index.js';
import { useMySql } from '../helpers/mysql.js';
import { COLUMNS, ROWS } from '../helpers/mysql-matrix.js';

const env = useMySql('ndjtr');
const tmp = mkdtempSync(join(tmpdir(), 'mysql-ndjson-transcode-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every staged NDJSON slice under `root`: slice number → text. */
function stagedSlices(root: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ndjson'))
        out.push([name.replace(/^.*?(\d+)\.ndjson$/, '$1'), readFileSync(p).toString('utf8')]);
    }
  };
  walk(root);
  return out.sort();
}

let runs = 0;
/** Export `table` into NDJSON staging under `root`: through `readEncoded`, or (`viaRows`) through rows. */
async function stage(table: string, root: string, viaRows: boolean, zeroDates?: 'error') {
  const unitId = `${env.database}.${table}`;
  const debugs: string[] = [];
  const logger: Logger = { debug: (m: string) => debugs.push(m), info() {}, warn() {}, error() {} };
  const source = new MySqlSource({ pool: env.newPool(), ...(zeroDates ? { zeroDates } : {}) });
  let reads = 0;
  const read = source.read.bind(source);
  source.read = (req, ctx) => {
    reads++;
    return read(req, ctx);
  };
  const res = await exportUnit({
    source,
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }), codec: ndjsonCodec() }),
    kv: new MemoryKvStore(),
    unit: { vendor: 'mysql', endpointId: 'ndjtr', unitId },
    mode: 'full',
    runId: `ndjtr-${++runs}`,
    logger,
    // a dead-letter policy makes the export take rows: the row path to compare with
    ...(viaRows
      ? {
          deadLetter: { async write() {} },
          policy: { sliceMaxRows: 2, chunkSize: 2, onRejectedRow: 'dead-letter' as const },
        }
      : { policy: { sliceMaxRows: 2, chunkSize: 2 } }),
  });
  await source.close();
  return { res, reads, transcoded: debugs.filter((m) => m.includes('written as ndjson')).length };
}

async function compare(table: string, rows: number) {
  const fast = await stage(table, join(tmp, `${table}-fast`), false);
  const slow = await stage(table, join(tmp, `${table}-rows`), true);
  expect(fast.res.stats.rowsExported).toBe(rows);
  expect(slow.res.stats.rowsExported).toBe(rows);
  expect(fast.reads).toBe(0);
  expect(fast.transcoded).toBeGreaterThanOrEqual(1);
  expect(slow.reads).toBeGreaterThan(0);
  const a = stagedSlices(join(tmp, `${table}-fast`));
  expect(a.length).toBeGreaterThanOrEqual(1);
  expect(a).toEqual(stagedSlices(join(tmp, `${table}-rows`)));
  return a;
}

describe('MySqlSource stages NDJSON without row objects', () => {
  it('the bytes of the row path for every type of the matrix (edge values, NULLs), slice by slice', async () => {
    await env.query(`CREATE TABLE tm (${COLUMNS}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    await env.query(
      `INSERT INTO tm (${'id ti tu si mi i iu bi bu d65 d12 f db b1 b10 b64 c8 vc tx lat emoji bn vb bl dt dt6 dt0 ts6 tm6 yr j e st u'.split(' ').join(', ')}) VALUES ${ROWS.join(', ')}`,
    );
    const staged = await compare('tm', ROWS.length);
    const text = staged.map(([, t]) => t).join('');
    // the fast forms: int64 digits as strings, ISO timestamps (Z for TIMESTAMP), JSON text tagged as written
    expect(text).toContain('"bi":"-9223372036854775808"');
    expect(text).toContain('"dt6":"2024-01-02T03:04:05.123456"');
    expect(text).toContain('"dt0":"2024-01-02T03:04:05.000000"');
    expect(text).toContain('"ts6":"2024-06-30T23:59:59.000001Z"');
    expect(text).toContain('"j":{"$j":');
  });

  it('timestamps outside the fast range, zero dates (null, or source_failed with zeroDates: error)', async () => {
    await env.query(
      'CREATE TABLE z (id BIGINT PRIMARY KEY, d DATE NOT NULL, dt DATETIME(6) NOT NULL, ts TIMESTAMP NULL, d3 DATETIME(3), t2 TIMESTAMP(2) NULL)',
    );
    const conn = await env.pool.getConnection();
    await conn.query("SET SESSION sql_mode = ''");
    await conn.query(`INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00', NULL, '2024-01-01 00:00:00.5', '2024-01-01 00:00:00.25'),
      (2, '2024-00-10', '1000-01-01 00:00:00.5', '1970-01-01 00:00:01', '1699-01-01 00:00:00.123', NULL),
      (3, '1699-12-31', '1699-12-31 23:59:59.999999', '2038-01-19 03:14:07', '0000-00-00 00:00:00', '1970-01-01 00:00:01'),
      (4, '2251-01-01', '2251-01-01 00:00:00', NULL, NULL, NULL)`);
    conn.release();
    const staged = await compare('z', 4);
    const text = staged.map(([, t]) => t).join('');
    expect(text).toContain('"dt":null');
    expect(text).toContain('"d3":"2024-01-01T00:00:00.500000"');
    expect(text).toContain('"t2":"2024-01-01T00:00:00.250000Z"');
    const err = await stage('z', join(tmp, 'z-strict'), false, 'error').catch((e) => e);
    expect(err).toMatchObject({ code: 'source_failed' });
    expect(err.message).toContain('zero date');
  });

  it('keys in the order a row object holds them: integer-like names first, __proto__ as data', async () => {
    await env.query(
      'CREATE TABLE k (`b` BIGINT PRIMARY KEY, `10` INT, `__proto__` VARCHAR(10), `2` DATETIME(6), `a b"c` JSON, `constructor` TEXT)',
    );
    await env.query(
      `INSERT INTO k VALUES (1, 10, 'p', '2024-01-01 00:00:00', '{"x": 1}', 'c'), (2, NULL, NULL, NULL, NULL, NULL), (3, -1, '', '2024-12-31 23:59:59.9', '[]', '')`,
    );
    const staged = await compare('k', 3);
    expect(staged[0][1].split('\n')[0]).toBe(
      '{"2":"2024-01-01T00:00:00.000000","10":10,"b":"1","__proto__":"p","a b\\"c":{"$j":"{\\"x\\": 1}"},"constructor":"c"}',
    );
  });
});
