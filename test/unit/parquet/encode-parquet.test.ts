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

describe('encodeParquet: arrays as Parquet LIST', () => {
  const schema: RecordSchema = {
    fields: [
      { name: 'i', type: 'json', nullable: true, logical: { element: 'int32' } },
      {
        name: 'n',
        type: 'json',
        nullable: true,
        logical: { element: 'decimal', elementLogical: { precision: 12, scale: 2 } },
      },
      { name: 't', type: 'json', nullable: false, logical: { element: 'string' } },
      { name: 'm', type: 'json', nullable: true, logical: { element: 'int64', dimensions: 2 } },
      { name: 'j', type: 'json', nullable: true, logical: { element: 'json' } },
      {
        name: 'ts',
        type: 'json',
        nullable: true,
        logical: { element: 'timestamp', elementLogical: { withTimeZone: false } },
      },
      { name: 'u', type: 'json', nullable: true, logical: { element: 'uuid' } },
      { name: 'plain', type: 'json', nullable: true },
    ],
  };
  const schemaOf = async (file: ArrayBuffer) =>
    parquetMetadata(file).schema.map((e) => [
      e.name,
      e.repetition_type,
      e.type ?? e.converted_type,
      e.logical_type?.type ?? null,
      e.num_children ?? null,
    ]);

  it('writes the standard 3-level LIST of the element type, nested per dimension', async () => {
    const { file } = await encode([[{ i: [1], t: [] }]], { schema });
    expect(await schemaOf(file)).toEqual([
      ['root', undefined, undefined, null, 8],
      ['i', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'INT32', null, null],
      ['n', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'INT64', 'DECIMAL', null],
      ['t', 'REQUIRED', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'BYTE_ARRAY', null, null],
      ['m', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'REQUIRED', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'INT64', null, null],
      ['j', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'BYTE_ARRAY', 'JSON', null],
      ['ts', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'INT64', 'TIMESTAMP', null],
      ['u', 'OPTIONAL', 'LIST', 'LIST', 1],
      ['list', 'REPEATED', undefined, null, 1],
      ['element', 'OPTIONAL', 'FIXED_LEN_BYTE_ARRAY', 'UUID', null],
      // no element type: JSON text as before
      ['plain', 'OPTIONAL', 'BYTE_ARRAY', null, null],
    ]);
    const meta = parquetMetadata(file).schema;
    expect(meta.find((e) => e.name === 'element' && e.logical_type?.type === 'JSON')?.converted_type).toBe('JSON');
    expect(meta.find((e) => e.name === 'plain')?.converted_type).toBe('JSON');
    expect(meta.find((e) => e.logical_type?.type === 'DECIMAL')).toMatchObject({ precision: 12, scale: 2 });
    expect(meta.find((e) => e.logical_type?.type === 'TIMESTAMP')?.logical_type).toEqual({
      type: 'TIMESTAMP',
      isAdjustedToUTC: false,
      unit: 'MICROS',
    });
  });

  it('keeps NULL elements, empty arrays and NULL arrays apart, and the values exact', async () => {
    const rows: Row[] = [
      {
        i: [1, null, -3],
        n: ['1.50', null, '-9999999999.99'],
        t: ['a', null, '', 'NULL'],
        m: [
          [1n, 9223372036854775807n],
          [null, -1n],
        ],
        j: [new JsonText('{"a": 1.50}'), null, new JsonText('12345678901234567890123')],
        ts: [Timestamp.parse('2024-01-01 00:00:00.000001'), null],
        u: ['123e4567-e89b-12d3-a456-426614174000', null],
        plain: [1, 2],
      },
      { i: [], n: [], t: [], m: [], j: [], ts: [], u: [], plain: [] },
      { i: null, n: null, t: [null], m: null, j: null, ts: null, u: null, plain: null },
    ];
    const { file } = await encode([rows], { schema });
    const back = await parquetReadObjects({
      file,
      utf8: true,
      parsers: {
        timestampFromMicroseconds: (us: bigint) => us,
        jsonFromBytes: (b: Uint8Array) => new TextDecoder().decode(b),
        stringFromBytes: (b: Uint8Array | undefined) => (b === undefined ? b : new TextDecoder().decode(b)),
      },
    });
    expect(back.map((r) => r.i)).toEqual([[1, null, -3], [], null]);
    expect(back.map((r) => r.n)).toEqual([[1.5, null, -9999999999.99], [], null]);
    expect(back.map((r) => r.t)).toEqual([['a', null, '', 'NULL'], [], [null]]);
    expect(back.map((r) => r.m)).toEqual([
      [
        [1n, 9223372036854775807n],
        [null, -1n],
      ],
      [],
      null,
    ]);
    expect(back.map((r) => r.j)).toEqual([['{"a": 1.50}', null, '12345678901234567890123'], [], null]);
    expect(back.map((r) => r.ts)).toEqual([
      [Timestamp.parse('2024-01-01 00:00:00.000001').epochMicros, null],
      [],
      null,
    ]);
    expect(back[0]!.u).toHaveLength(2);
    expect(back.map((r) => r.plain)).toEqual(['[1,2]', '[]', null]);
  });

  it("writes JSON text with arrays: 'json', for every column or by name", async () => {
    const rows: Row[] = [{ i: [1, null], t: ['a'], n: ['1.50'] }];
    const all = await encode([rows], { schema, arrays: 'json' });
    const meta = parquetMetadata(all.file).schema;
    expect(meta.filter((e) => e.converted_type === 'LIST')).toEqual([]);
    expect(meta.find((e) => e.name === 'i')).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'JSON' });
    expect((await parquetReadObjects({ file: all.file })).map((r) => [r.i, r.t])).toEqual([[[1, null], ['a']]]);
    const some = await encode([rows], { schema, arrays: { i: 'json' } });
    const names = parquetMetadata(some.file)
      .schema.filter((e) => e.converted_type === 'LIST')
      .map((e) => e.name);
    expect(names).toEqual(['n', 't', 'm', 'element', 'j', 'ts', 'u']);
  });

  it('refuses a value the LIST cannot hold, naming row, column and the way out', async () => {
    const bad: Array<[Row, RegExp]> = [
      [{ i: '[0:1]={1,2}' }, /row 0, column "i" is PostgreSQL array text \("\[0:1\]=\{1,2\}"/],
      [{ i: [[1], [2]] }, /column "i" has more than 1 dimension at \[0\]/],
      [{ i: [1, [2]] }, /column "i" has more than 1 dimension at \[1\]/],
      [{ m: [1n, 2n] }, /column "m" has 1 dimension at \[0\] where the column's LIST has 2/],
      [{ m: [[1n], [2n, 3n]] }, /column "m" is ragged: the sub-array at \[1\] has 2 elements where another has 1/],
      [{ m: [[1n], null] }, /column "m" has 1 dimension at \[1\]/],
      [{ j: [[new JsonText('1')], [null]] }, /column "j" has more than 1 dimension at \[0\]/],
      [{ i: [1, 'x'] }, /column "i" element \[1\] is a string, not int32/],
      [{ n: ['1.005'] }, /column "n" element \[0\] is "1.005", which DECIMAL\(12,2\) cannot hold exactly/],
      [{ u: ['nope'] }, /column "u" element \[0\] is a string, not uuid/],
      [{ i: { a: 1 } }, /column "i" is an object, not an array/],
      [{ t: null }, /column "t" is null but the field is not nullable/],
    ];
    for (const [row, message] of bad) {
      const err = await encode([[{ t: [], ...row }]], { schema }).catch((e) => e);
      expect(
        err,
        JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      ).toMatchObject({
        code: 'row_rejected',
        message: expect.stringMatching(message),
      });
      expect(err.details).toMatchObject({ row: 0, column: Object.keys(row)[0] });
      if (!/not nullable|element/.test(err.message)) expect(err.message).toContain("arrays: 'json'");
    }
    // plain JSON values in a json[] column (not every leaf JsonText) are elements, not dimensions
    const { file } = await encode([[{ t: [], j: [[1, 2], { a: [3] }] }]], { schema });
    const [back] = await parquetReadObjects({
      file,
      utf8: true,
      parsers: { jsonFromBytes: (b: Uint8Array) => new TextDecoder().decode(b) },
    });
    expect(back!.j).toEqual(['[1,2]', '{"a":[3]}']);
    // as JSON text, the same arrays are written
    const asJson: Row[] = [
      { t: [], i: '[0:1]={1,2}' },
      { t: [], i: [[1], [2]] },
      { t: [], m: [[1n], [2n, 3n]] },
    ];
    const json = await encode([asJson], { schema, arrays: 'json' });
    expect((await parquetReadObjects({ file: json.file })).map((r) => r.i)).toEqual(['[0:1]={1,2}', [[1], [2]], null]);
  });

  it('keeps box[] arrays (always staged as PostgreSQL array text) as JSON text', async () => {
    const box: RecordSchema = {
      fields: [
        {
          name: 'b',
          type: 'json',
          nullable: true,
          logical: { element: 'string' },
          native: { dialect: 'postgres', type: 'box[]' },
        },
      ],
    };
    const { file } = await encode([[{ b: '{(1,1),(0,0);(2,2),(1,1)}' }]], { schema: box });
    expect(parquetMetadata(file).schema.find((e) => e.name === 'b')).toMatchObject({ converted_type: 'JSON' });
  });
});
