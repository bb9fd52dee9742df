import { RecordBatchReader, Type } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../../src/arrow/index.js';
import { IngestError, type RecordSchema, type Row } from '../../../src/index.js';
import { decodeAll, encodeAll } from './codec-helpers.js';

const schema: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false },
    { name: 'n', type: 'int32', nullable: true },
    { name: 'amount', type: 'decimal', nullable: true },
    { name: 'price', type: 'float64', nullable: true },
    { name: 'ok', type: 'boolean', nullable: true },
    { name: 'at', type: 'timestamp', nullable: true },
    { name: 'day', type: 'date', nullable: true },
    { name: 'doc', type: 'json', nullable: true },
    { name: 'raw', type: 'binary', nullable: true },
    { name: 'name', type: 'string', nullable: true },
  ],
};

const typedRows: Row[] = [
  {
    id: 9007199254740993n,
    n: -7,
    amount: '12345678901234567890.000001',
    price: 2.5,
    ok: true,
    at: new Date('2024-02-29T12:34:56.789Z'),
    day: '2024-02-29',
    doc: { when: new Date(0), big: 1n, list: [1, 'two', null], $i: 'looks like a tag' },
    raw: new Uint8Array([0, 1, 255]),
    name: 'ü😀',
  },
  { id: -1n, n: null, amount: null, price: Number.NaN, ok: false, at: null, day: null, doc: null, raw: null, name: '' },
];

async function arrowSchemaOf(bytes: Uint8Array) {
  const reader = await RecordBatchReader.from(
    (async function* () {
      yield bytes;
    })(),
  );
  await reader.open();
  return reader.schema;
}

describe('arrowCodec', () => {
  it('writes the Arrow types of the schema and reads the same values back', async () => {
    const codec = arrowCodec({ batchRows: 1 });
    const bytes = await encodeAll(codec, [typedRows.slice(0, 1), [], typedRows.slice(1)], schema);
    const arrow = await arrowSchemaOf(bytes);
    const typeOf = (name: string) => arrow.fields.find((f) => f.name === name)?.type.typeId;
    expect(typeOf('id')).toBe(Type.Int);
    expect(typeOf('amount')).toBe(Type.Utf8);
    expect(typeOf('at')).toBe(Type.Timestamp);
    expect(typeOf('doc')).toBe(Type.Utf8);
    expect(typeOf('raw')).toBe(Type.Binary);
    const out = await decodeAll(codec, bytes, 100, schema);
    expect(out).toEqual(typedRows);
    expect(typeof out[0].id).toBe('bigint');
    expect(out[0].at).toBeInstanceOf(Date);
    expect(out[0].raw).toBeInstanceOf(Uint8Array);
  });

  it('infers the schema from the first batch and widens it for rows that do not fit', async () => {
    const codec = arrowCodec();
    const rows: Row[] = [
      { a: 1n, b: 'x', c: new Date(5) },
      { a: 2n, b: null },
      { a: 'now a string', b: 'y', c: null, d: true },
      JSON.parse('{"__proto__": {"p": 1}, "a": 3}'),
    ];
    const bytes = await encodeAll(codec, [rows.slice(0, 2), rows.slice(2)]);
    const out = await decodeAll(codec, bytes, 7);
    expect(out).toEqual(rows);
    expect(Object.hasOwn(out[3], '__proto__')).toBe(true);
    expect(out[1]).not.toHaveProperty('c');
  });

  it('refuses a row that does not fit a given schema with row_rejected naming the field', async () => {
    let err: unknown;
    try {
      await encodeAll(arrowCodec(), [[{ id: 1 }]], schema);
    } catch (e) {
      err = e;
    }
    expect(IngestError.is(err, 'row_rejected')).toBe(true);
    expect((err as Error).message).toContain('id');
  });

  it('writes nothing for no rows without a schema, and an empty stream with one', async () => {
    expect((await encodeAll(arrowCodec(), [[]])).byteLength).toBe(0);
    const empty = await encodeAll(arrowCodec(), [], schema);
    expect(empty.byteLength).toBeGreaterThan(0);
    expect(await decodeAll(arrowCodec(), empty)).toEqual([]);
  });

  it('reports bytes that are no Arrow stream as staging_corrupt', async () => {
    let err: unknown;
    try {
      await decodeAll(arrowCodec(), Buffer.from('{"not":"arrow"}\n'.repeat(10)));
    } catch (e) {
      err = e;
    }
    expect(IngestError.is(err, 'staging_corrupt')).toBe(true);
  });
});
