import { RecordBatchReader, TimeUnit, Type } from 'apache-arrow';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../../src/arrow/index.js';
import {
  JsonText,
  ndjsonCodec,
  ndjsonGzipCodec,
  type RecordCodec,
  type RecordSchema,
  type Row,
  Timestamp,
} from '../../../src/index.js';
import { jsonTextArb, kinds, timestampArb } from '../../helpers/values.js';
import { decodeAll, encodeAll } from './codec-helpers.js';

const schema: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false },
    { name: 'at', type: 'timestamp', nullable: true, logical: { withTimeZone: true } },
    { name: 'local', type: 'timestamp', nullable: true, logical: { withTimeZone: false } },
    { name: 'created', type: 'timestamp', nullable: true },
    { name: 'doc', type: 'json', nullable: true },
    { name: 'amount', type: 'decimal', nullable: true, logical: { precision: 40, scale: 20 } },
    { name: 'f', type: 'float64', nullable: true },
    { name: 'day', type: 'date', nullable: true },
    { name: 'tm', type: 'time', nullable: true },
    { name: 'u', type: 'uuid', nullable: true },
    { name: 'iv', type: 'interval', nullable: true },
  ],
};

const PG_TS_MAX = 9224318015999999999n; // 294276-12-31 23:59:59.999999, beyond Arrow's int64 µs

const zoned = timestampArb.map((t) => t.withZoned(true));
const local = timestampArb.map((t) => t.withZoned(false));
const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null, freq: 5 });

/** Rows of `schema`, each column holding the kind a PostgreSQL source produces (Date where a user would). */
const rowArb: fc.Arbitrary<Row> = fc
  .record({
    id: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    at: nullable(zoned),
    local: nullable(local),
    created: nullable(fc.date({ noInvalidDate: true })),
    doc: nullable(jsonTextArb),
    amount: nullable(fc.constantFrom('1.50', 'NaN', 'Infinity', '-Infinity', '-0.000000000000000000001', '1e3')),
    f: nullable(fc.double()),
    day: nullable(fc.constantFrom('2024-02-29', 'infinity', '-infinity', '0044-03-15 BC')),
    tm: nullable(fc.constantFrom('00:00:00', '23:59:59.999999', '24:00:00', '12:00:00+05:30')),
    u: nullable(fc.uuid()),
    iv: nullable(fc.constantFrom('1 year 2 mons 3 days 04:05:06.789', '-00:00:00.000001', '00:00:00')),
  })
  .map((r) => ({ ...r }) as Row);

const codecs: Array<[string, () => RecordCodec]> = [
  ['ndjson', () => ndjsonCodec()],
  ['ndjson.gz', () => ndjsonGzipCodec({ level: 1 })],
  ['arrow', () => arrowCodec({ batchRows: 3 })],
];

describe('codecs return exactly what was written (Timestamp, JsonText, Date, exact strings)', () => {
  for (const [name, make] of codecs) {
    for (const withSchema of [true, false]) {
      it(`${name}, ${withSchema ? 'with' : 'without'} a schema`, async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(fc.array(rowArb, { maxLength: 7 }), { maxLength: 4 }), async (batches) => {
            const codec = make();
            const s = withSchema ? schema : undefined;
            const bytes = await encodeAll(codec, batches, s);
            const out = await decodeAll(codec, bytes, 97, s);
            const rows = batches.flat();
            expect(out).toEqual(rows);
            expect(kinds(out)).toEqual(kinds(rows));
          }),
          { numRuns: name === 'arrow' ? 40 : 80 },
        );
      });
    }
  }

  it('mixed kinds in one column still come back exactly (Date and Timestamp, zoned and not, beyond int64)', async () => {
    const rows: Row[] = [
      { at: Timestamp.parse('2024-01-01 00:00:00.000001+00'), doc: new JsonText('1.50') },
      { at: new Date(5), doc: { plain: 1n } },
      { at: Timestamp.parse('2024-01-01 00:00:00.000001'), doc: '1.50' },
      { at: Timestamp.fromEpochMicros(PG_TS_MAX), doc: null },
      { at: Timestamp.infinite(-1), doc: new JsonText('[1.0]') },
    ];
    const s: RecordSchema = {
      fields: [
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'doc', type: 'json', nullable: true },
      ],
    };
    for (const [, make] of codecs) {
      for (const sch of [s, undefined]) {
        const codec = make();
        // one row per batch and all rows in one batch
        for (const batches of [rows.map((r) => [r]), [rows]]) {
          const out = await decodeAll(codec, await encodeAll(codec, batches, sch), 1 << 20, sch);
          expect(out).toEqual(rows);
          expect(kinds(out)).toEqual(kinds(rows));
        }
      }
    }
  });

  it('NDJSON writes Timestamps as ISO text (bare in a typed column) and JsonText verbatim', async () => {
    const codec = ndjsonCodec();
    const row: Row = {
      id: 1n,
      at: Timestamp.parse('2024-01-01 00:00:00.000001+00'),
      local: Timestamp.parse('-infinity'),
      doc: new JsonText('{"a": 1.50}'),
      created: 'not a timestamp',
    };
    const typed = (await encodeAll(codec, [[row]], schema)).toString();
    expect(typed).toBe(
      '{"id":"1","at":"2024-01-01T00:00:00.000001Z","local":"-infinity","doc":{"$j":"{\\"a\\": 1.50}"},"created":{"$s":"not a timestamp"}}\n',
    );
    const tagged = (await encodeAll(codec, [[row]])).toString();
    expect(tagged).toContain('"at":{"$t":"2024-01-01T00:00:00.000001Z"}');
    expect((await encodeAll(codec, [[{ t: Timestamp.infinite(1) }]])).toString()).toBe('{"t":{"$t":"infinityZ"}}\n');
    expect(await decodeAll(codec, Buffer.from(typed), 5, schema)).toEqual([row]);
  });

  it('Arrow stores Timestamps as timestamp[us] (UTC when zoned) with ±infinity as int64 max/min', async () => {
    const codec = arrowCodec();
    const rows: Row[] = [
      {
        at: Timestamp.parse('2024-01-01 00:00:00.000001+00'),
        local: Timestamp.parse('infinity'),
        doc: new JsonText('1.50'),
      },
      { at: Timestamp.infinite(-1), local: Timestamp.parse('0044-03-15 12:00:00.5 BC'), doc: null },
    ];
    const bytes = await encodeAll(codec, [rows]);
    const reader = await RecordBatchReader.from(
      (async function* () {
        yield bytes;
      })(),
    );
    await reader.open();
    const byName = new Map(reader.schema.fields.map((f) => [f.name, f]));
    expect(byName.get('at')?.type.typeId).toBe(Type.Timestamp);
    expect((byName.get('at')!.type as { unit: TimeUnit }).unit).toBe(TimeUnit.MICROSECOND);
    expect((byName.get('at')!.type as { timezone: string | null }).timezone).toBe('UTC');
    expect((byName.get('local')!.type as { timezone: string | null }).timezone ?? null).toBe(null);
    expect(byName.get('doc')?.type.typeId).toBe(Type.Utf8);
    const batch = (await reader.next()).value;
    const raw = (name: string, r: number) => (batch.getChild(name)!.data[0].values as BigInt64Array)[r];
    expect(raw('at', 0)).toBe(1704067200000001n);
    expect(raw('at', 1)).toBe(-(2n ** 63n));
    expect(raw('local', 0)).toBe(2n ** 63n - 1n);
    expect(batch.getChild('doc')!.get(0)).toBe('1.50');
    expect(await decodeAll(codec, bytes)).toEqual(rows);
  });
});
