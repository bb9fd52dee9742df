import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { JsonText, type RecordSchema, type Row, Timestamp } from '../../../src/index.js';
import { encodeParquet } from '../../../src/parquet/index.js';

async function encode(
  rows: Row[][],
  opts: Parameters<typeof encodeParquet>[1] = {},
): Promise<{ file: ArrayBuffer; chunks: number }> {
  const parts: Uint8Array[] = [];
  for await (const c of encodeParquet(rows, opts)) parts.push(c);
  const buf = Buffer.concat(parts);
  return {
    file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer,
    chunks: parts.length,
  };
}

describe('encodeParquet', () => {
  it('writes every field type of a schema and hyparquet reads the same values back', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 's', type: 'string', nullable: false },
        { name: 'i32', type: 'int32', nullable: true },
        { name: 'i64', type: 'int64', nullable: false },
        { name: 'f', type: 'float64', nullable: false },
        { name: 'dec', type: 'decimal', nullable: false },
        { name: 'b', type: 'boolean', nullable: false },
        { name: 'ts', type: 'timestamp', nullable: false },
        { name: 'd', type: 'date', nullable: false },
        { name: 'j', type: 'json', nullable: true },
        { name: 'bin', type: 'binary', nullable: false },
      ],
    };
    const rows: Row[] = [
      {
        s: 'héllo',
        i32: -5,
        i64: 9007199254740993n,
        f: 1.25,
        dec: '12345678901234567890.12',
        b: true,
        ts: new Date('2024-05-06T07:08:09.123Z'),
        d: '2024-02-29',
        j: { a: [1, 'x', null] },
        bin: new Uint8Array([0, 255, 7]),
      },
      {
        s: '',
        i32: null,
        i64: -1n,
        f: -0.5,
        dec: '0',
        b: false,
        ts: new Date(0),
        d: '1969-12-31',
        j: null,
        bin: new Uint8Array(),
      },
    ];
    const { file } = await encode([rows], { schema });
    const back = await parquetReadObjects({ file, utf8: false });
    expect(back).toEqual([
      { ...rows[0], d: new Date('2024-02-29T00:00:00Z') },
      { ...rows[1], d: new Date('1969-12-31T00:00:00Z') },
    ]);
    const meta = parquetMetadata(file);
    const ts = meta.schema.find((e) => e.name === 'ts');
    expect(ts?.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' });
  });

  it('writes Timestamp to the microsecond (±infinity as int64 max/min) and JsonText verbatim', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'local', type: 'timestamp', nullable: true, logical: { withTimeZone: false } },
        { name: 'j', type: 'json', nullable: true },
      ],
    };
    const rows: Row[] = [
      {
        at: Timestamp.parse('2024-01-01 00:00:00.000001+00'),
        local: Timestamp.parse('0044-03-15 12:00:00 BC'),
        j: new JsonText('{"p": 1.50, "big": 12345678901234567890123}'),
      },
      { at: Timestamp.infinite(1), local: Timestamp.parse('-infinity'), j: { n: 12345678901234567890n } },
      { at: null, local: null, j: null },
    ];
    const { file } = await encode([rows], { schema });
    const meta = parquetMetadata(file);
    expect(meta.schema.find((e) => e.name === 'j')?.logical_type).toEqual({ type: 'JSON' });
    // converted type JSON too (DuckDB reads the column as JSON only then), yet the bytes are the text verbatim
    expect(meta.schema.find((e) => e.name === 'j')?.converted_type).toBe('JSON');
    expect(meta.schema.find((e) => e.name === 'local')?.logical_type).toEqual({
      type: 'TIMESTAMP',
      isAdjustedToUTC: false,
      unit: 'MICROS',
    });
    const raw = await parquetReadObjects({
      file,
      utf8: true,
      parsers: {
        timestampFromMicroseconds: (us: bigint) => us,
        jsonFromBytes: (b: Uint8Array) => new TextDecoder().decode(b),
      },
    });
    expect(raw.map((r) => [r.at, r.local, r.j])).toEqual([
      [
        1704067200000001n,
        Timestamp.parse('0044-03-15 12:00:00 BC').epochMicros,
        '{"p": 1.50, "big": 12345678901234567890123}',
      ],
      [2n ** 63n - 1n, -(2n ** 63n), '{"n":12345678901234567890}'],
      [null, null, null],
    ]);
    await expect(encode([[{ at: Timestamp.fromEpochMicros(2n ** 63n) }]], { schema })).rejects.toMatchObject({
      code: 'row_rejected',
    });
  });

  it('writes bounded decimals as DECIMAL and uuid as UUID, refusing what they cannot hold exactly', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 'd', type: 'decimal', nullable: true, logical: { precision: 12, scale: 2 } },
        { name: 'w', type: 'decimal', nullable: true, logical: { precision: 30, scale: 5 } },
        { name: 'u', type: 'uuid', nullable: true },
      ],
    };
    const { file } = await encode(
      [[{ d: '-1.50', w: '-1234567890123456789012345.00001', u: '123e4567-e89b-12d3-a456-426614174000' }]],
      { schema },
    );
    const meta = parquetMetadata(file);
    expect(meta.schema.find((e) => e.name === 'd')).toMatchObject({ type: 'INT64', precision: 12, scale: 2 });
    expect(meta.schema.find((e) => e.name === 'w')).toMatchObject({ type: 'FIXED_LEN_BYTE_ARRAY', precision: 30 });
    expect(meta.schema.find((e) => e.name === 'u')?.logical_type).toEqual({ type: 'UUID' });
    const bads: Row[] = [{ d: 'NaN' }, { d: '1.005' }, { d: '12345678901.00' }, { d: 'Infinity' }, { u: 'not-a-uuid' }];
    for (const bad of bads) await expect(encode([[bad]], { schema })).rejects.toMatchObject({ code: 'row_rejected' });
  });

  it('yields one chunk per row group, so the consumer sees the file while it is written', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => ({ id: i, name: `n${i}` }));
    const { file, chunks } = await encode([rows.slice(0, 1000), rows.slice(1000)], { rowGroupSize: 1000 });
    const meta = parquetMetadata(file);
    expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([1000, 1000, 500]);
    expect(chunks).toBe(3);
    expect(await parquetReadObjects({ file })).toEqual(rows);
  });

  it('infers a schema from the first row group: numbers as doubles, mixed and nested values as JSON', async () => {
    const rows: Row[] = [
      { n: 1, mixed: 'a', obj: { x: 1 }, nul: null },
      { n: 2.5, mixed: 3, obj: [1, 2], nul: null },
    ];
    const { file } = await encode([rows]);
    expect(await parquetReadObjects({ file })).toEqual(rows);
  });

  it('refuses a later value that does not fit the inferred column, naming row and column', async () => {
    const err = await encode([[{ n: 1 }], [{ n: 'two' }]], { rowGroupSize: 1 }).catch((e) => e);
    expect(err).toMatchObject({ code: 'row_rejected', message: expect.stringMatching(/row 1, column "n"/) });
    const extra = await encode([[{ n: 1 }], [{ n: 2, m: 3 }]], { rowGroupSize: 1 }).catch((e) => e);
    expect(extra).toMatchObject({ code: 'row_rejected', message: expect.stringContaining('"m"') });
  });

  it('refuses null in a non-nullable field and a bad rowGroupSize', async () => {
    const schema: RecordSchema = { fields: [{ name: 'a', type: 'string', nullable: false }] };
    await expect(encode([[{ a: null }]], { schema })).rejects.toMatchObject({ code: 'row_rejected' });
    await expect(encode([[{ a: 'x' }]], { rowGroupSize: 0 })).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('writes a valid empty file for no rows', async () => {
    const { file } = await encode([], { schema: { fields: [{ name: 'a', type: 'int64', nullable: true }] } });
    expect(await parquetReadObjects({ file })).toEqual([]);
    expect(Number(parquetMetadata(file).num_rows)).toBe(0);
  });
});
