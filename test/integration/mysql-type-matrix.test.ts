/**
 * Type matrix: every MariaDB type a user meets → MySqlSource → each staging codec (memory, filesystem NDJSON,
 * NDJSON.gz, Arrow) → MySqlSink, into a pre-created target and into one the sink creates; compared in SQL both ways
 * with EXCEPT ALL, on the values and on their text forms; created column types compared with the source's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  JsonText,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  runUnit,
  type StagingProvider,
  Timestamp,
} from '../../src/index.js';
import { MySqlSink, MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { testContext } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { ALL, COLUMNS, ROWS, STORED } from '../helpers/mysql-matrix.js';

const env = useMySql('tm');
const root = mkdtempSync(join(tmpdir(), 'mysql-tm-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Values and text forms of every stored column, for EXCEPT ALL both ways. */
const textForms = (cols: string[]) =>
  cols.map((c) =>
    ['bn', 'vb', 'bl'].includes(c)
      ? `HEX(${c})`
      : ['b1', 'b10', 'b64'].includes(c)
        ? `BIN(${c})`
        : `CAST(${c} AS CHAR)`,
  );

async function exceptBothWays(a: string, b: string, cols: string[]): Promise<[number, number]> {
  const sel = (t: string) => `SELECT ${[...cols, ...textForms(cols)].join(', ')} FROM ${t}`;
  const [x] = await env.query<any[]>(`SELECT COUNT(*) AS n FROM (${sel(a)} EXCEPT ALL ${sel(b)}) d`);
  const [y] = await env.query<any[]>(`SELECT COUNT(*) AS n FROM (${sel(b)} EXCEPT ALL ${sel(a)}) d`);
  return [Number(x.n), Number(y.n)];
}

async function columnTypes(table: string): Promise<string[]> {
  const rows = await env.query<any[]>(
    `SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t, CHARACTER_SET_NAME AS cs FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [env.database, table],
  );
  return rows.map((r) => `${r.c}:${String(r.t)}${r.cs && !String(r.cs).startsWith('utf8') ? `:${r.cs}` : ''}`);
}

const codecs: Array<[string, () => StagingProvider]> = [
  ['memory', () => new MemoryStagingProvider()],
  ['ndjson', () => new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: join(root, 'nd') }) })],
  [
    'ndjson.gz',
    () =>
      new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: join(root, 'gz') }),
        codec: 'ndjson.gz',
      }),
  ],
  [
    'mysql-tsv',
    () =>
      new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: join(root, 'tsv') }),
        codec: mySqlLoadDataCodec(),
      }),
  ],
];
const arrowStaging = () =>
  new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: join(root, 'arrow') }),
    codec: arrowCodec(),
  });

describe('MariaDB type matrix through every staging codec', () => {
  it('the source reads exact values: µs Timestamps, JsonText as written, bigint above 2^63, exact decimals, bit strings, bytes', async () => {
    await env.query(`CREATE TABLE tm (${COLUMNS}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    await env.query(`INSERT INTO tm (${STORED.join(', ')}) VALUES ${ROWS.join(', ')}`);
    const source = new MySqlSource({ pool: env.newPool({ dateStrings: false, supportBigNumbers: false }) });
    const unitId = `${env.database}.tm`;
    const { rows, schema } = await source.preview({ unitId, limit: 10 }, testContext({ unitId }));
    const r1 = rows.find((r) => r.id === 1)!;
    // BIGINT UNSIGNED does not fit a signed int64: a decimal(20,0), its exact text (ADR 0014)
    expect(r1.bu).toBe('18446744073709551615');
    expect(r1.bi).toBe(-9223372036854775808n);
    expect(r1.d65).toBe('99999999999999999999999999999999999.999999999999999999999999999999');
    expect(r1.b64).toBe('1'.repeat(64));
    expect(r1.b10).toBe('1010101010');
    expect(r1.bn).toEqual(new Uint8Array([0, 255, 10, 9]));
    expect(r1.lat).toBe('café');
    expect(r1.emoji).toBe('😀 emoji ü');
    expect(r1.j).toBeInstanceOf(JsonText);
    expect((r1.j as unknown as JsonText).text).toBe(
      '{"a": 1.50, "big": 123456789012345678901234567890, "s": "\\u00e9", "n": [1e400, -0]}',
    );
    expect(r1.e).toBe("b'c");
    expect(r1.st).toBe('x,z');
    expect(r1.tm6).toBe('-838:59:59.000000');
    expect(r1.g).toBe(-4294967296n);
    const r3 = rows.find((r) => r.id === 3)!;
    expect(r3.dt6).toBeInstanceOf(Timestamp);
    expect((r3.dt6 as Timestamp).toISOString()).toBe('2024-01-02T03:04:05.123456');
    expect((r3.dt6 as Timestamp).zoned).toBe(false);
    expect((r3.ts6 as Timestamp).toISOString()).toBe('2024-06-30T23:59:59.000001Z');
    expect(rows.find((r) => r.id === 4)!.j).toBeNull();
    const field = (n: string) => schema!.fields.find((f) => f.name === n)!;
    expect(field('d12')).toMatchObject({
      type: 'decimal',
      logical: { precision: 12, scale: 2 },
      native: { dialect: 'mysql', type: 'decimal(12,2)' },
    });
    expect(field('bu')).toMatchObject({
      type: 'decimal',
      logical: { precision: 20, scale: 0 },
      native: { dialect: 'mysql', type: 'bigint(20) unsigned' },
    });
    expect(field('ts6')).toMatchObject({ type: 'timestamp', logical: { withTimeZone: true, precision: 6 } });
    expect(field('dt6')).toMatchObject({ type: 'timestamp', logical: { withTimeZone: false, precision: 6 } });
    expect(field('j')).toMatchObject({ type: 'json' });
    expect(field('e')).toMatchObject({ type: 'string', logical: { enumLabels: ['a', "b'c", 'd e'] } });
    expect(field('lat').native?.type).toBe('varchar(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci');
    expect(field('u')).toMatchObject({ type: 'uuid' });
    expect(field('tm6')).toMatchObject({ type: 'time' });
    await source.close();
  });

  it('the whole matrix round-trips through Arrow, BIGINT UNSIGNED above 2^63 − 1 included (a decimal(20,0))', async () => {
    await env.query('CREATE TABLE tm_arrow LIKE tm');
    await env.query(`INSERT INTO tm_arrow (${STORED.join(', ')}) SELECT ${STORED.join(', ')} FROM tm`);
    const arrowUnit = `${env.database}.tm_arrow`;
    for (const loadMethod of ['load-data', 'insert'] as const) {
      const target = `made_arrow_${loadMethod.replace('-', '_')}`;
      await runUnit({
        source: new MySqlSource({ pool: env.newPool({ connectionLimit: 3 }) }),
        sink: new MySqlSink({ pool: env.newPool({ connectionLimit: 3 }), loadMethod, tables: { [arrowUnit]: target } }),
        staging: arrowStaging(),
        kv: new MemoryKvStore(),
        unit: { vendor: 'mysql', endpointId: `tm-arrow-${loadMethod}`, unitId: arrowUnit, sinkId: target },
        mode: 'full',
        policy: { sliceMaxRows: 2, chunkSize: 2 },
      });
      expect(await exceptBothWays('tm_arrow', target, ALL)).toEqual([0, 0]);
      expect(await columnTypes(target)).toEqual(await columnTypes('tm_arrow'));
    }
  });

  for (const [codec, provider] of codecs) {
    for (const loadMethod of ['load-data', 'insert'] as const) {
      it(`${codec}, sink ${loadMethod}: pre-created and sink-created targets equal the source, as values and as text, both ways`, async () => {
        const tag = `${codec.replace(/[.-]/g, '_')}_${loadMethod.replace('-', '_')}`;
        const pre = `pre_${tag}`;
        const made = `made_${tag}`;
        await env.query(`CREATE TABLE ${pre} LIKE tm`);
        const unitId = `${env.database}.tm`;
        for (const target of [pre, made]) {
          const inner = new MySqlSink({
            pool: env.newPool({ connectionLimit: 3 }),
            loadMethod,
            tables: { [unitId]: target },
          });
          let provenance: { slicesPassedThrough?: number } | undefined;
          const result = await runUnit({
            source: new MySqlSource({ pool: env.newPool({ connectionLimit: 3 }) }),
            sink: {
              descriptor: inner.descriptor,
              import: async (req, ctx) => {
                const r = await inner.import(req, ctx);
                provenance = r.provenance as typeof provenance;
                return r;
              },
            },
            staging: provider(),
            kv: new MemoryKvStore(),
            unit: { vendor: 'mysql', endpointId: `tm-${tag}`, unitId, sinkId: target },
            mode: 'full',
            policy: { sliceMaxRows: 2, chunkSize: 2 },
          });
          expect(result.stats.rowsImported).toBe(ROWS.length);
          // LOAD DATA text staged by the source goes to LOAD DATA unchanged; the insert sink decodes it as rows
          if (codec === 'mysql-tsv') {
            expect(result.stagingHandles.every((h) => h.key.endsWith('.mysqltsv'))).toBe(true);
            expect(provenance?.slicesPassedThrough).toBe(loadMethod === 'load-data' ? result.stats.slices : 0);
          }
        }
        expect(await exceptBothWays('tm', pre, ALL)).toEqual([0, 0]);
        expect(await exceptBothWays('tm', made, ALL)).toEqual([0, 0]);
        // created types are the source's COLUMN_TYPEs (generated columns become ordinary columns holding the values)
        expect(await columnTypes(made)).toEqual(await columnTypes('tm'));
      });
    }
  }

  it('mysql-tsv pass-through with merge (twice: the second run updates in place) and replace keeps the target equal to the source', async () => {
    const unitId = `${env.database}.tm`;
    const tsv = codecs.find(([c]) => c === 'mysql-tsv')![1];
    await env.query('CREATE TABLE merged LIKE tm');
    for (const disposition of ['merge', 'merge', 'replace'] as const) {
      const r = await runUnit({
        source: new MySqlSource({ pool: env.newPool({ connectionLimit: 3 }) }),
        sink: new MySqlSink({ pool: env.newPool({ connectionLimit: 3 }), tables: { [unitId]: 'merged' } }),
        staging: tsv(),
        kv: new MemoryKvStore(),
        unit: { vendor: 'mysql', endpointId: `tm-tsv-${disposition}`, unitId, sinkId: 'merged' },
        mode: 'full',
        disposition,
        policy: { sliceMaxRows: 2, chunkSize: 2 },
      });
      expect(r.stats.rowsImported).toBe(ROWS.length);
      expect(await exceptBothWays('tm', 'merged', ALL)).toEqual([0, 0]);
    }
  });
});
