/**
 * The Arrow transcoders without a server: for every column type the Arrow codec maps (and the fallbacks), COPY text
 * → `copyToArrow` decodes to exactly the rows the row path stages (each field through the source's parser, rows
 * through `arrowCodec().encode`), with the same Arrow schema and field metadata; and `arrowToCsv` writes exactly the
 * CSV `CsvEncoder` writes for the decoded rows — for slices written by the transcoder and by the row path, in any
 * chunking, with the encoder's refusals (NUL) and the codec's `staging_corrupt`; `arrowToCopyText` likewise writes
 * exactly `CsvEncoder.encodeTextRow` (COPY text format).
 */
import { isUtf8 } from 'node:buffer';
import {
  Field,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Type,
  Utf8,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../../src/arrow/index.js';
import { IngestError, type RecordSchema, type Row, Timestamp, type Value } from '../../../src/index.js';
import { arrowToCopyText, arrowToCsv } from '../../../src/postgres/arrow-to-csv.js';
import { type ColumnInfo, fieldSchema } from '../../../src/postgres/catalog.js';
import { type CopyColumn, CsvEncoder } from '../../../src/postgres/copy-encoding.js';
import { escapeCopyText } from '../../../src/postgres/copy-text.js';
import { copyToArrow } from '../../../src/postgres/copy-to-arrow.js';
import type { CopyTextColumn, CopyTranscoderOptions } from '../../../src/postgres/transcode.js';
import { createTypeParsers } from '../../../src/postgres/type-mapping.js';
import { decodeAll, encodeAll } from './codec-helpers.js';

/** A column as the catalog would describe it, with its type OID (for the source's parser). */
interface Spec {
  name: string;
  typid: number;
  typname: string;
  typcategory?: string;
  formatted: string;
  elemname?: string;
  elemcategory?: string;
  native?: string;
}

const spec = (name: string, typid: number, typname: string, formatted: string, more: Partial<Spec> = {}): Spec => ({
  name,
  typid,
  typname,
  formatted,
  typcategory: 'X',
  ...more,
});

const arr = (name: string, typid: number, elemname: string, formatted: string, elemcategory = 'X'): Spec =>
  spec(name, typid, `_${elemname}`, formatted, { typcategory: 'A', elemname, elemcategory });

const SPECS: Spec[] = [
  spec('id', 23, 'int4', 'integer', { typcategory: 'N' }),
  spec('i2', 21, 'int2', 'smallint', { typcategory: 'N' }),
  spec('i8', 20, 'int8', 'bigint', { typcategory: 'N' }),
  spec('num', 1700, 'numeric', 'numeric', { typcategory: 'N' }),
  spec('num12', 1700, 'numeric', 'numeric(12,2)', { typcategory: 'N' }),
  spec('f4', 700, 'float4', 'real', { typcategory: 'N' }),
  spec('f8', 701, 'float8', 'double precision', { typcategory: 'N' }),
  spec('b', 16, 'bool', 'boolean', { typcategory: 'B' }),
  spec('by', 17, 'bytea', 'bytea', { typcategory: 'U' }),
  spec('d', 1082, 'date', 'date', { typcategory: 'D' }),
  spec('tm', 1083, 'time', 'time without time zone', { typcategory: 'D' }),
  spec('ttz', 1266, 'timetz', 'time with time zone', { typcategory: 'D' }),
  spec('ts', 1114, 'timestamp', 'timestamp without time zone', { typcategory: 'D' }),
  spec('tstz', 1184, 'timestamptz', 'timestamp with time zone', { typcategory: 'D' }),
  spec('iv', 1186, 'interval', 'interval', { typcategory: 'T' }),
  spec('u', 2950, 'uuid', 'uuid', { typcategory: 'U' }),
  spec('t', 25, 'text', 'text', { typcategory: 'S' }),
  spec('vc', 1043, 'varchar', 'character varying(10)', { typcategory: 'S' }),
  spec('ch', 1042, 'bpchar', 'character(8)', { typcategory: 'S' }),
  spec('j', 114, 'json', 'json', { typcategory: 'U' }),
  spec('jb', 3802, 'jsonb', 'jsonb', { typcategory: 'U' }),
  arr('a_int', 1007, 'int4', 'integer[]', 'N'),
  arr('a_text', 1009, 'text', 'text[]', 'S'),
  arr('a_tstz', 1185, 'timestamptz', 'timestamp with time zone[]', 'D'),
  arr('a_jsonb', 3807, 'jsonb', 'jsonb[]', 'U'),
  arr('a_bytea', 1001, 'bytea', 'bytea[]', 'U'),
  arr('a_mood', 90001, 'mood', 'mood[]', 'E'),
  spec('mo', 90000, 'mood', 'mood', { typcategory: 'E', native: 'public.mood' }),
  spec('ip', 869, 'inet', 'inet', { typcategory: 'I' }),
  spec('money', 790, 'money', 'money', { typcategory: 'N' }),
];

function columnInfo(s: Spec): ColumnInfo {
  return {
    name: s.name,
    typid: s.typid,
    typname: s.typname,
    typcategory: s.typcategory ?? 'X',
    typelem: 0,
    elemname: s.elemname ?? null,
    elemcategory: s.elemcategory ?? null,
    nullable: true,
    formatted: s.formatted,
    declared: s.formatted,
    basetype: s.formatted,
    native: s.native ?? (s.typname === '_mood' ? 'public.mood[]' : s.formatted),
  };
}

interface Table {
  specs: Spec[];
  schema: RecordSchema;
  copyColumns: CopyTextColumn[];
  targetColumns: CopyColumn[];
}

function table(specs: Spec[]): Table {
  const infos = specs.map(columnInfo);
  const parsers = createTypeParsers(infos);
  const kindOf = (t: string | null | undefined): CopyColumn['kind'] =>
    t === 'json' || t === 'jsonb' ? 'json' : t === 'bytea' ? 'bytea' : 'scalar';
  return {
    specs,
    schema: { fields: infos.map(fieldSchema) },
    copyColumns: infos.map((c) => ({
      name: c.name,
      typname: c.typname,
      typcategory: c.typcategory,
      parse: parsers.getTypeParser(c.typid) as (text: string) => Value,
    })),
    // what PostgresSink's plan gives for a target of the same types
    targetColumns: infos.map((c) =>
      c.typcategory === 'A'
        ? { name: c.name, kind: 'array' as const, elem: kindOf(c.elemname) }
        : { name: c.name, kind: kindOf(c.typname) },
    ),
  };
}

const ALL = table(SPECS);
const byName = (name: string): Spec => SPECS.find((s) => s.name === name)!;

/** Rows of PostgreSQL text values (as COPY TO prints them with the source's settings, before escaping). */
type TextRow = (string | null)[];

function copyText(rows: TextRow[]): Buffer {
  return Buffer.from(
    rows.map((r) => `${r.map((v) => (v === null ? '\\N' : escapeCopyText(v))).join('\t')}\n`).join(''),
    'utf8',
  );
}

/** The row path: each field through the column's parser, one row object per line, the Arrow codec's encode. */
async function rowPath(t: Table, rows: TextRow[], batch = 1000, codec = arrowCodec()): Promise<Buffer> {
  const objects: Row[] = rows.map((r) => {
    const row: Row = {};
    t.copyColumns.forEach((c, i) => {
      row[c.name] = r[i] === null ? null : c.parse(r[i] as string);
    });
    return row;
  });
  const batches: Row[][] = [];
  for (let i = 0; i < objects.length; i += batch) batches.push(objects.slice(i, i + batch));
  return encodeAll(codec, batches, t.schema);
}

/** A deterministic generator (tests must be repeatable). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** COPY text fed to the transcoder in pieces of random sizes (1 byte up to `max`). */
async function transcode(
  t: Table,
  text: Buffer,
  random: () => number,
  max = 300,
  options?: CopyTranscoderOptions,
): Promise<Buffer> {
  const tr = await copyToArrow(t.copyColumns, t.schema, options);
  const out: Uint8Array[] = [];
  for (let at = 0; at < text.length; ) {
    const n = random() < 0.1 ? 1 : 1 + Math.floor(random() * max);
    out.push(...tr.push(text.subarray(at, at + n)));
    at += n;
  }
  out.push(...tr.end());
  return Buffer.concat(out);
}

/** The two import transcoders: COPY CSV (`CsvEncoder.encodeRow`) and COPY text format (`encodeTextRow`). */
const FORMATS = [
  { name: 'csv', toCopy: arrowToCsv, encode: (e: CsvEncoder, rows: Row[]) => e.encode(rows) },
  {
    name: 'text',
    toCopy: arrowToCopyText,
    encode: (e: CsvEncoder, rows: Row[]) => rows.map((r) => e.encodeTextRow(r)).join(''),
  },
] as const;
type Format = (typeof FORMATS)[number];

async function csvOf(
  t: Table,
  bytes: Buffer,
  pieceBytes = 777,
  pieces = 97,
  format: Format = FORMATS[0],
): Promise<{ csv: Buffer; rows: number }> {
  let rows = 0;
  const out: Uint8Array[] = [];
  const source = (async function* () {
    for (let at = 0; at < bytes.length; at += pieces) yield bytes.subarray(at, at + pieces);
  })();
  for await (const piece of format.toCopy(source, {
    schema: t.schema,
    columns: t.targetColumns,
    origin: { slice: 3, table: '"public"."dst"' },
    pieceBytes,
    onRows: (n) => {
      rows += n;
    },
  }))
    out.push(piece);
  return { csv: Buffer.concat(out), rows };
}

/** The row count of every record batch in `bytes`, over all its IPC streams. */
async function batchLengths(bytes: Uint8Array): Promise<number[]> {
  const out: number[] = [];
  for await (const reader of RecordBatchReader.readAll(
    (async function* () {
      yield bytes;
    })(),
  ))
    for await (const batch of reader) out.push(batch.numRows);
  return out;
}

/** The Arrow schema (fields, types, metadata) of each IPC stream in `bytes`. */
async function arrowSchemas(bytes: Uint8Array) {
  const out: unknown[] = [];
  for await (const reader of RecordBatchReader.readAll(
    (async function* () {
      yield bytes;
    })(),
  )) {
    out.push(
      reader.schema.fields.map((f) => ({
        name: f.name,
        type: String(f.type),
        nullable: f.nullable,
        metadata: [...f.metadata],
      })),
    );
    for await (const _ of reader) {
      // drain the stream to reach the next one
    }
  }
  return out;
}

/** Both directions for `rows`: transcoded ≡ row path (decoded rows, schema), CSV ≡ CsvEncoder of the decoded rows. */
async function check(t: Table, rows: TextRow[], seed = 1): Promise<void> {
  const random = rng(seed);
  const text = copyText(rows);
  const expectedBytes = await rowPath(t, rows);
  const gotBytes = await transcode(t, text, random);
  const expected = await decodeAll(arrowCodec(), expectedBytes);
  const got = await decodeAll(arrowCodec(), gotBytes, 1 + Math.floor(random() * 5000));
  expect(got).toEqual(expected);
  expect(got.length).toBe(rows.length);
  // A timestamp beyond the int64 µs range makes the row path widen its column to tagged JSON in a new IPC stream
  // (where exactly depends on its input batches, so only the rows are compared then); otherwise the schemas of the
  // streams (fields, Arrow types, metadata) are the same.
  const widened = expected.some((row) =>
    Object.values(row).some(
      (v) =>
        v instanceof Timestamp &&
        v.infinity === 0 &&
        (v.epochMicros >= 2n ** 63n - 1n || v.epochMicros <= -(2n ** 63n)),
    ),
  );
  if (!widened) expect(await arrowSchemas(gotBytes)).toEqual(await arrowSchemas(expectedBytes));
  for (const format of FORMATS) {
    const encoder = new CsvEncoder(t.targetColumns, { slice: 3, table: '"public"."dst"' });
    const csv = Buffer.from(format.encode(encoder, got), 'utf8');
    for (const bytes of [gotBytes, expectedBytes]) {
      const out = await csvOf(t, bytes, 1 + Math.floor(random() * 2000), 1 + Math.floor(random() * 3000), format);
      expect(out.rows).toBe(rows.length);
      expect(out.csv.toString('utf8'), format.name).toBe(csv.toString('utf8'));
      expect(out.csv.equals(csv)).toBe(true);
    }
  }
}

const BIG = 'x'.repeat(50_000);
const HEX50K = Array.from({ length: 25_000 }, (_, i) => (i % 256).toString(16).padStart(2, '0')).join('');

/** One value class per row for every column (NULL where a column has nothing of that class). */
const CLASSES: Record<string, string | null>[] = [
  {
    id: '1',
    i2: '-32768',
    i8: '-9223372036854775808',
    num: 'NaN',
    num12: '-9999999999.99',
    f4: 'NaN',
    f8: '-0',
    b: 't',
    by: '\\x',
    d: '2024-02-29',
    tm: '24:00:00',
    ttz: '00:00:00+14:59',
    ts: '2024-02-29 23:59:59.999999',
    tstz: '2024-02-29 23:59:59.999999+00',
    iv: '1 year 2 mons 3 days 04:05:06.789012',
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    t: '',
    vc: '',
    ch: 'ab      ',
    j: '{"b": 1.50, "a": 12345678901234567890123, "a": 1.00000000000000000001}',
    jb: '{"s": "tab\\tq\\"uote\\\\ \\u0001", "big": 12345678901234567890123}',
    a_int: '{1,NULL,3}',
    a_text: '{"a,b","c\\"d",NULL,"NULL","","back\\\\slash","{}"}',
    a_tstz: '{"2024-01-01 00:00:00.000001+00",infinity,-infinity,NULL}',
    a_jsonb: '{"{\\"a\\": 1.50}",NULL,"[1, 12345678901234567890]"}',
    a_bytea: '{"\\\\x00ff",NULL,"\\\\x"}',
    a_mood: '{happy,NULL,sad}',
    mo: 'happy',
    ip: '192.168.0.1/24',
    money: '-$92,233,720,368,547,758.08',
  },
  {
    id: '2',
    i2: '32767',
    i8: '9223372036854775807',
    num: 'Infinity',
    num12: '0.01',
    f4: 'Infinity',
    f8: '1.7976931348623157e+308',
    b: 'f',
    by: '\\x00ff10',
    d: 'infinity',
    tm: '00:00:00.000001',
    ts: 'infinity',
    tstz: 'infinity',
    iv: '-1 days -00:00:00.000001',
    u: '00000000-0000-0000-0000-000000000000',
    t: 'tab\there nl\nhere cr\rx back\\slash quote"dq "" comma, semi; \\. \\N end',
    vc: 'ü€😀 x',
    j: '"just a string"',
    jb: '[]',
    a_int: '{}',
    a_text: '{}',
  },
  {
    id: '3',
    i8: '0',
    num: '-Infinity',
    f4: '-Infinity',
    f8: '4.9406564584124654e-324',
    d: '-infinity',
    ts: '-infinity',
    tstz: '-infinity',
    t: 'ü€😀𝄞 four-byte 𐍈 and \b\f\v controls \u0001\u001f',
    j: 'null',
    jb: '{"n": {"u": "ü😀\\u0001"}, "e": "\\\\N"}',
  },
  {
    id: '4',
    i8: '-1',
    num: '-0.000000000000000000001',
    f8: '0.1',
    d: '4713-01-01 BC',
    ts: '4713-01-01 00:00:00 BC',
    tstz: '0044-03-15 12:00:00+00 BC',
    t: '\\N',
    jb: '"\\\\"',
  },
  {
    id: '5',
    i8: '123456789012345',
    num: `1${'0'.repeat(499)}.${'9'.repeat(500)}`,
    f8: '-1e-320',
    d: '5874897-12-31',
    ts: '1699-12-31 23:59:59.999999',
    tstz: '1700-01-01 00:00:00+00',
  },
  {
    id: '6',
    i8: '1234567890123456',
    num: '12.50',
    ts: '2250-12-31 23:59:59.999999',
    tstz: '2251-01-01 00:00:00+00',
  },
  { id: '7', i8: '-999999999999999', ts: '294276-12-31 23:59:59.999999', tstz: '294276-12-31 23:59:59.999999+00' },
  { id: '8', i8: '9007199254740993', ts: '0001-01-01 00:00:00', tstz: '4714-11-24 00:00:00+00 BC' },
  { id: '9', i8: '-9007199254740993', ts: '2024-01-01 00:00:00', tstz: '2024-01-01 00:00:00.5+00' },
  { id: '10', ts: '2024-01-01 00:00:00.000001', tstz: '1970-01-01 00:00:00+00', t: BIG, by: `\\x${HEX50K}` },
  { id: '11', ts: '1969-12-31 23:59:59.999999', tstz: '1969-12-31 23:59:59.999999+00', jb: `"${BIG}"` },
  { id: '12' },
];

const rowsOfClasses = (t: Table, classes: Record<string, string | null>[]): TextRow[] =>
  classes.map((c) => t.specs.map((s) => c[s.name] ?? null));

describe('copyToArrow and arrowToCsv (every type the Arrow codec maps)', () => {
  it('give the row path’s rows, schema and CSV for every value class, NULLs and 50 KB values', async () => {
    const rows = rowsOfClasses(ALL, CLASSES);
    for (let seed = 1; seed <= 5; seed++) await check(ALL, rows, seed);
  });

  it('give the same for each value class in a slice of its own (a column’s first value decides nothing)', async () => {
    for (const c of CLASSES) await check(ALL, rowsOfClasses(ALL, [c]));
  });

  it('stage an empty slice as the codec does (schema only) and import it as no CSV', async () => {
    await check(ALL, []);
    const bytes = await transcode(ALL, Buffer.alloc(0), rng(1));
    expect((await csvOf(ALL, bytes)).csv.length).toBe(0);
  });

  it('cut record batches at 10,000 rows, or at the codec’s batchRows, as the row path does, and read them back in order', async () => {
    const t = table(['id', 'i8', 't', 'tstz'].map(byName));
    const rows: TextRow[] = Array.from({ length: 25_003 }, (_, i) => [
      String(i),
      i % 7 === 0 ? null : String(i * 1_000_003 - 9e15),
      `name-${i}`,
      i % 5 === 0 ? null : `2024-01-01 00:00:00.${String(i % 1_000_000).padStart(6, '0')}+00`,
    ]);
    await check(t, rows, 7);
    const text = copyText(rows);
    expect(await batchLengths(await transcode(t, text, rng(8)))).toEqual([10_000, 10_000, 5_003]);
    for (const batchRows of [3, 2_500, 30_000]) {
      const got = await transcode(t, text, rng(batchRows), 300, { batchRows });
      // the row path with the same codec options, in source batches of 1,000 rows
      const expected = await rowPath(t, rows, 1_000, arrowCodec({ batchRows }));
      expect(await batchLengths(got)).toEqual(await batchLengths(expected));
      expect(await decodeAll(arrowCodec(), got)).toEqual(await decodeAll(arrowCodec(), expected));
    }
    // a hint that is no positive integer is ignored (the codec's default)
    for (const batchRows of [0, -5, 2.5, Number.NaN])
      expect(await batchLengths(await transcode(t, text, rng(9), 300, { batchRows }))).toEqual([10_000, 10_000, 5_003]);
  });
});

// ——— randomised value classes ———

function randomText(random: () => number, max: number): string {
  const pool = [
    'a',
    'Z',
    '0',
    ' ',
    '\t',
    '\n',
    '\r',
    '\\',
    '"',
    "'",
    ',',
    ';',
    '.',
    'N',
    '\\N',
    '\\.',
    'ü',
    '€',
    '😀',
    '𝄞',
    '\u0001',
    '\u007f',
    '\b',
    '\f',
    '\v',
    '{',
    '}',
  ];
  const n = Math.floor(random() * max);
  let s = '';
  for (let i = 0; i < n; i++) s += pool[Math.floor(random() * pool.length)];
  return s;
}

function randomInt8(random: () => number): string {
  const r = random();
  if (r < 0.1) return random() < 0.5 ? '-9223372036854775808' : '9223372036854775807';
  const digits = 1 + Math.floor(random() * 19);
  let s = String(1 + Math.floor(random() * 9));
  for (let i = 1; i < digits; i++) s += String(Math.floor(random() * 10));
  let v = BigInt(s);
  if (v > 9223372036854775807n) v = v % 9223372036854775807n;
  return random() < 0.5 ? String(-v) : String(v);
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

function randomTimestamp(random: () => number, zoned: boolean): string {
  const r = random();
  if (r < 0.03) return 'infinity';
  if (r < 0.06) return '-infinity';
  const bc = random() < 0.05;
  const year = random() < 0.6 ? 1700 + Math.floor(random() * 551) : 1 + Math.floor(random() * 9999);
  const month = 1 + Math.floor(random() * 12);
  const day = 1 + Math.floor(random() * 28);
  let s = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(Math.floor(random() * 24), 2)}:${pad(Math.floor(random() * 60), 2)}:${pad(Math.floor(random() * 60), 2)}`;
  const micros = random() < 0.3 ? 0 : Math.floor(random() * 1_000_000);
  if (micros) s += `.${pad(micros, 6).replace(/0+$/, '')}`;
  if (zoned) s += '+00';
  return bc ? `${s} BC` : s;
}

function randomFloat(random: () => number): string {
  const r = random();
  if (r < 0.05) return ['NaN', 'Infinity', '-Infinity', '-0', '0'][Math.floor(random() * 5)];
  const buf = new DataView(new ArrayBuffer(8));
  buf.setUint32(0, Math.floor(random() * 4294967296));
  buf.setUint32(4, Math.floor(random() * 4294967296));
  const v = r < 0.5 ? buf.getFloat64(0) : (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
  return Number.isNaN(v) ? 'NaN' : String(v);
}

function randomBytes(random: () => number, max: number): string {
  const n = Math.floor(random() * max);
  let s = '\\x';
  for (let i = 0; i < n; i++)
    s += Math.floor(random() * 256)
      .toString(16)
      .padStart(2, '0');
  return s;
}

function randomRow(random: () => number, i: number): Record<string, string | null> {
  const nul = () => random() < 0.15;
  const v = (f: () => string) => (nul() ? null : f());
  return {
    id: String(i),
    i2: v(() => String(Math.floor(random() * 65536) - 32768)),
    i8: v(() => randomInt8(random)),
    num: v(() =>
      random() < 0.1
        ? 'NaN'
        : `${random() < 0.5 ? '-' : ''}${Math.floor(random() * 1e9)}.${Math.floor(random() * 1e6)}`,
    ),
    f4: v(() => randomFloat(random)),
    f8: v(() => randomFloat(random)),
    b: v(() => (random() < 0.5 ? 't' : 'f')),
    by: v(() => randomBytes(random, 40)),
    d: v(
      () => `${pad(1 + Math.floor(random() * 9999), 4)}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}`,
    ),
    ts: v(() => randomTimestamp(random, false)),
    tstz: v(() => randomTimestamp(random, true)),
    t: v(() => randomText(random, 40)),
    vc: v(() => randomText(random, 10)),
    j: v(() => JSON.stringify({ s: randomText(random, 12), n: Math.floor(random() * 1e6) })),
    jb: v(() => JSON.stringify([randomText(random, 8), random() < 0.5])),
    a_text: v(
      () =>
        `{${Array.from({ length: Math.floor(random() * 3) }, () => JSON.stringify(randomText(random, 5).replace(/[\\{}]/g, ''))).join(',')}}`,
    ),
  };
}

describe('copyToArrow and arrowToCsv (randomised)', () => {
  it('agree with the row path on 3 × 2,000 random rows of every value class', async () => {
    for (const seed of [11, 12, 13]) {
      const random = rng(seed);
      const classes = Array.from({ length: 2000 }, (_, i) => randomRow(random, i));
      await check(ALL, rowsOfClasses(ALL, classes), seed);
    }
  });
});

// ——— refusals, fallbacks, foreign slices ———

describe('arrowToCsv on slices the row path writes from other sources', () => {
  const origin = { slice: 2, table: '"s"."t"' };

  async function csv(bytes: Uint8Array, columns: CopyColumn[], format: Format = FORMATS[0]): Promise<string> {
    const out: Uint8Array[] = [];
    for await (const piece of format.toCopy(
      (async function* () {
        yield bytes;
      })(),
      { schema: { fields: [] }, columns, origin, pieceBytes: 64 },
    ))
      out.push(piece);
    return Buffer.concat(out).toString('utf8');
  }

  it('writes untyped rows (absent keys, Dates, tagged JSON, strings into json columns) as CsvEncoder does', async () => {
    const rows: Row[] = [
      {
        id: 1n,
        at: new Date('2024-02-29T12:34:56.789Z'),
        doc: { a: [1, 'two', null], big: 12345678901234567890n },
        s: 'x',
      },
      { id: 2n, at: null, doc: 'just "text"', s: 'a,b' },
      { id: 3n, s: 'missing doc and at' },
      { id: 4n, at: new Date(0), doc: 3.5, s: 7 },
      { id: 5n, doc: [true, false], extra: 'new key' },
    ];
    const columns: CopyColumn[] = [
      { name: 'id', kind: 'scalar' },
      { name: 'at', kind: 'scalar' },
      { name: 'doc', kind: 'json' },
      { name: 's', kind: 'scalar' },
      { name: 'constructor', kind: 'scalar' },
      { name: 'extra', kind: 'json' },
    ];
    const bytes = await encodeAll(arrowCodec({ batchRows: 2 }), [rows.slice(0, 2), rows.slice(2)]);
    const decoded = await decodeAll(arrowCodec(), bytes);
    for (const format of FORMATS)
      expect(await csv(bytes, columns, format)).toBe(format.encode(new CsvEncoder(columns, origin), decoded));
  });

  it('writes typed values into json targets, numbers and booleans as JSON, as CsvEncoder does', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 'n', type: 'int32', nullable: true },
        { name: 'f', type: 'float64', nullable: true },
        { name: 'b', type: 'boolean', nullable: true },
        { name: 's', type: 'string', nullable: true },
        { name: 'i', type: 'int64', nullable: true },
      ],
    };
    const rows: Row[] = [
      { n: -5, f: -0, b: true, s: 'q"uote', i: -9223372036854775808n },
      { n: null, f: Number.NaN, b: false, s: '', i: 9223372036854775807n },
      { n: 2147483647, f: 1e300, b: null, s: null, i: 0n },
    ];
    const bytes = await encodeAll(arrowCodec(), [rows], schema);
    const decoded = await decodeAll(arrowCodec(), bytes);
    for (const kind of ['scalar', 'json'] as const) {
      const columns = schema.fields.map((f) => ({ name: f.name, kind }));
      for (const format of FORMATS)
        expect(await csv(bytes, columns, format)).toBe(format.encode(new CsvEncoder(columns, origin), decoded));
    }
  });

  it('refuses NUL in text and in JSON text with the encoder’s row_rejected (column, slice, row)', async () => {
    for (const [field, bad] of [
      [{ name: 't', type: 'string' as const, nullable: true }, 'a\u0000b'],
      [{ name: 't', type: 'string' as const, nullable: true }, `${'x'.repeat(300)}\u0000`],
    ] as const) {
      const schema: RecordSchema = { fields: [{ name: 'id', type: 'int64', nullable: false }, field] };
      const rows: Row[] = [
        { id: 1n, t: 'fine' },
        { id: 2n, t: 'fine too' },
        { id: 3n, t: bad },
      ];
      const bytes = await encodeAll(arrowCodec({ batchRows: 2 }), [rows], schema);
      const columns: CopyColumn[] = [
        { name: 'id', kind: 'scalar' },
        { name: 't', kind: 'scalar' },
      ];
      let expected: unknown;
      try {
        new CsvEncoder(columns, origin).encode(await decodeAll(arrowCodec(), bytes));
      } catch (err) {
        expected = err;
      }
      for (const format of FORMATS) {
        const err = await csv(bytes, columns, format).catch((e) => e);
        expect(err).toBeInstanceOf(IngestError);
        expect(err.code).toBe('row_rejected');
        expect(err.message).toBe((expected as Error).message);
        expect(err.details).toEqual({ column: 't', slice: 2, row: 3, table: '"s"."t"' });
      }
    }
    // JSON text from a PostgreSQL json column
    const t = table(['id', 'j'].map(byName));
    const bytes = await rowPath(t, [
      ['1', '"a\\u0000"'],
      ['2', '"\u0000"'],
    ]);
    for (const format of FORMATS) {
      const err = await csvOf(t, bytes, 777, 97, format).catch((e) => e);
      expect(err.code).toBe('row_rejected');
      expect(err.details).toMatchObject({ column: 'j', slice: 3, row: 2 });
    }
  });

  it('writes a foreign Utf8 column that is not UTF-8 as its decoded text (U+FFFD), as the row path does', async () => {
    const values = new Uint8Array([0x61, 0xff, 0x62, 0xe2, 0x82, 0x63]);
    const t = makeData({ type: new Utf8(), length: 2, valueOffsets: new Int32Array([0, 3, 6]), data: values });
    const id = makeData({ type: new Int64(), length: 2, data: new BigInt64Array([1n, 2n]) });
    const schema = new Schema([new Field('id', new Int64(), true), new Field('t', new Utf8(), true)]);
    const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 2, children: [id, t] }));
    const bytes = RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true);
    const decoded = await decodeAll(arrowCodec(), bytes);
    expect(decoded[0].t).toBe('a\ufffdb');
    const columns: CopyColumn[] = [
      { name: 'id', kind: 'scalar' },
      { name: 't', kind: 'scalar' },
    ];
    for (const format of FORMATS) {
      const out: Uint8Array[] = [];
      for await (const piece of format.toCopy(
        (async function* () {
          yield bytes;
        })(),
        {
          schema: { fields: [] },
          columns,
          origin,
          pieceBytes: 64,
        },
      ))
        out.push(piece);
      // byte for byte: PostgreSQL gets the replacement characters, not the invalid bytes
      expect(Buffer.concat(out).equals(Buffer.from(format.encode(new CsvEncoder(columns, origin), decoded)))).toBe(
        true,
      );
    }
  });

  it('fails with staging_corrupt on bytes that are no Arrow IPC stream', async () => {
    const good = await rowPath(ALL, rowsOfClasses(ALL, CLASSES.slice(0, 3)));
    const bad = Buffer.from(good);
    bad.fill(0xab, 8, 400);
    for (const bytes of [Buffer.from('not arrow at all, not arrow at all'), bad]) {
      const err = await csvOf(ALL, bytes).catch((e) => e);
      expect(err).toBeInstanceOf(IngestError);
      expect(err.code).toBe('staging_corrupt');
    }
  });
});

describe('copyToArrow refusals', () => {
  it('stores oid as the row path does (int64: the parser and the schema agree, ADR 0014)', async () => {
    const t = table([byName('id'), spec('o', 26, 'oid', 'oid', { typcategory: 'N' })]);
    await check(t, [
      ['1', '42'],
      ['2', '4294967295'],
      ['3', '0'],
    ]);
  });

  it('refuses COPY text that ends inside a line or has the wrong number of columns', async () => {
    const t = table(['id', 't'].map(byName));
    const tr = await copyToArrow(t.copyColumns, t.schema);
    tr.push(Buffer.from('1\tx\n2\ty'));
    expect(() => tr.end()).toThrow(/ends inside line 2/);
    for (const text of ['1\tx\textra\n', '1\n']) {
      const tr2 = await copyToArrow(t.copyColumns, t.schema);
      expect(() => tr2.push(Buffer.from(text))).toThrow(/COPY text line 1/);
    }
  });

  it('writes the schema’s field order whatever the COPY column order, and tables without columns', async () => {
    const t = table(['id', 'i8', 't', 'tstz', 'jb'].map(byName));
    const rows = rowsOfClasses(t, CLASSES);
    const permuted: Table = { ...t, schema: { fields: [...t.schema.fields].reverse() } };
    await check(permuted, rows);
    const none = table([]);
    await check(none, [[], [], []]);
  });

  it('decodes bytes that are not UTF-8 field by field with U+FFFD, as pg decodes a field (SQL_ASCII databases)', async () => {
    const t = table(['id', 't', 'vc', 'jb', 'a_text'].map(byName));
    const fields = [
      [
        Buffer.from('1'),
        Buffer.from([0x61, 0xff, 0x62]),
        Buffer.from([0xe2, 0x82]),
        Buffer.from('"\xfe"'),
        Buffer.from('{a}'),
      ],
      [Buffer.from('2'), Buffer.from('ü'), Buffer.from([0xc3]), Buffer.from('{}'), Buffer.from([0x7b, 0xf0, 0x7d])],
    ];
    const text = Buffer.concat(
      fields.map((r) => Buffer.concat([...r.flatMap((f, i) => (i ? [Buffer.from('\t'), f] : [f])), Buffer.from('\n')])),
    );
    const rows: TextRow[] = fields.map((r) => r.map((f) => f.toString('utf8')));
    const expected = await decodeAll(arrowCodec(), await rowPath(t, rows));
    expect(expected[0].t).toBe('a\ufffdb');
    for (const seed of [1, 2, 3]) {
      const bytes = await transcode(t, text, rng(seed), 5);
      expect(await decodeAll(arrowCodec(), bytes)).toEqual(expected);
      // and the staged Utf8 columns hold valid UTF-8 (what any other Arrow reader requires)
      for await (const reader of RecordBatchReader.readAll([bytes]))
        for await (const batch of reader)
          for (const [i, f] of batch.schema.fields.entries()) {
            if (f.type.typeId !== Type.Utf8) continue;
            const d = batch.getChildAt(i)!.data[0];
            const offsets = d.valueOffsets as Int32Array;
            expect(isUtf8((d.values as Uint8Array).subarray(offsets[0], offsets[d.length])), f.name).toBe(true);
          }
    }
  });

  it('reads COPY escapes PostgreSQL accepts (octal, hex, any other backslash) like the pg-copy decoder', async () => {
    const t = table(['id', 't'].map(byName));
    const text = Buffer.from('1\t\\101\\x42\\x4\\xg\\q\\303\\274\n2\t\\377\n', 'utf8');
    const bytes = await transcode(t, text, rng(3));
    const rows = await decodeAll(arrowCodec(), bytes);
    expect(rows).toEqual([
      { id: 1, t: 'AB\u0004xgqü' },
      { id: 2, t: '\ufffd' },
    ]);
  });
});
