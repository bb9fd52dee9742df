import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLine } from '../../../src/codecs/ndjson-codec.js';
import { compileRowPlan, encodeRow } from '../../../src/codecs/value-encoding.js';
import { JsonText, type RecordSchema, type Row, Timestamp, type Value } from '../../../src/index.js';
import { type CopyColumn, CsvEncoder } from '../../../src/postgres/copy-encoding.js';
import { unescapeCopy } from '../../../src/postgres/copy-text.js';
import { copyToNdjson } from '../../../src/postgres/copy-to-ndjson.js';
import { ndjsonToCopyText } from '../../../src/postgres/ndjson-to-copy.js';
import type { CopyTextColumn } from '../../../src/postgres/transcode.js';
import { createTypeParsers } from '../../../src/postgres/type-mapping.js';

/*
 * The NDJSON transcoders (docs/decisions/0008-transcoded-row-paths.md) against the row path they replace, on classes
 * of values: every line must come out byte for byte as the row path writes it, and every line the row path refuses
 * must be refused with the same error.
 */

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(bytes.length, at + size));
}

// --- import: NDJSON → COPY text -----------------------------------------------------------------------------------

const SCHEMA: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: true },
    { name: 'at', type: 'timestamp', nullable: true },
    { name: 'bin', type: 'binary', nullable: true },
    { name: 's', type: 'string', nullable: true },
    { name: 'j', type: 'json', nullable: true },
    { name: 'jt', type: 'json', nullable: true },
    { name: 'n', type: 'float64', nullable: true },
    { name: 'ok', type: 'boolean', nullable: true },
    { name: 'constructor', type: 'string', nullable: true },
    { name: '__proto__', type: 'string', nullable: true },
    { name: '7', type: 'string', nullable: true },
    { name: 'only_staged', type: 'string', nullable: true },
    { name: 'typed_staged', type: 'int64', nullable: true },
  ],
};
/**
 * Target columns: a json target for `jt`, one column the staging lacks (`missing`), `only_staged` and `typed_staged`
 * left out.
 */
const TARGET: CopyColumn[] = [
  { name: 'id', kind: 'scalar' },
  { name: 'at', kind: 'scalar' },
  { name: 'bin', kind: 'bytea' },
  { name: 's', kind: 'scalar' },
  { name: 'j', kind: 'json' },
  { name: 'jt', kind: 'json' },
  { name: 'n', kind: 'scalar' },
  { name: 'ok', kind: 'scalar' },
  { name: 'constructor', kind: 'scalar' },
  { name: '__proto__', kind: 'scalar' },
  { name: '7', kind: 'array' },
  { name: 'missing', kind: 'scalar' },
];
const ORIGIN = { slice: 3, table: '"public"."t"' };

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(
    '',
    'a"b',
    'back\\slash',
    'tab\there',
    'nl\nx',
    'cr\rx',
    '\\u0041',
    '\u0000nul',
    'ü€😀',
    '\\.',
    '\\N',
  ),
);
const timestamp = fc.oneof(
  fc
    .bigInt({ min: -8_520_336_000_000_000n, max: 8_867_491_199_999_999n })
    .chain((us) => fc.boolean().map((zoned) => Timestamp.fromEpochMicros(us, { zoned }))),
  fc
    .bigInt({ min: -200_000_000_000_000_000n, max: 9_000_000_000_000_000_000n })
    .map((us) => Timestamp.fromEpochMicros(us)),
  fc.constantFrom(
    Timestamp.infinite(1, { zoned: true }),
    Timestamp.infinite(-1),
    Timestamp.parse('0044-03-15 12:00:00 BC'),
  ),
);
const value: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  text,
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  timestamp,
  text.map((t) => new JsonText(`{"k": ${JSON.stringify(t)}, "n": 1.50}`)),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.uint8Array({ maxLength: 6 }),
  fc.date({ noInvalidDate: true }),
  fc.array(fc.oneof(fc.integer(), text, fc.constant(null)), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('a', '$j', '$t'), fc.oneof(text, fc.integer()), { maxKeys: 2 }),
);
/** Rows with the schema's columns (some missing) holding values of every class, in any column. */
const row = fc
  .array(fc.tuple(fc.constantFrom(...SCHEMA.fields.map((f) => f.name)), value), { maxLength: 14 })
  .map((pairs) => {
    const r: Row = {};
    for (const [k, v] of pairs)
      Object.defineProperty(r, k, { value: v, enumerable: true, writable: true, configurable: true });
    return r;
  });

/** Lines the encoder never writes but a file may hold: each must be read as the row path reads it. */
const FOREIGN = [
  '{}',
  '{ "id": "1"}',
  '{"id":"007","s":"x"}',
  '{"id":"-0"}',
  '{"id":12,"n":1.50,"ok":true}',
  '{"n":-0}',
  '{"n":1E5}',
  '{"n":-Infinity}',
  '{"s":"a","s":null}',
  '{"s":null,"s":"b"}',
  '{"s":"\\u00e9\\u0000"}',
  '{"s":"bad \\a escape"}',
  '{"s":"raw\ttab"}',
  '{"s\\u0041":"k"}',
  '{"j":{ "$j":"{}"}}',
  '{"j":{"$j":"[1]","x":1}}',
  '{"j":{"$j":5}}',
  '{"jt":"plain string in a json target"}',
  '{"at":"2024-02-30T00:00:00.000000Z"}',
  '{"at":"2024-02-29T23:59:59.5Z"}',
  '{"at":"2024-02-29 23:59:59.000100"}',
  '{"at":1704164645678}',
  '{"only_staged":{"deep":[1,2]},"s":"kept"}',
  '{"only_staged":"x\\"y","s":"k"}',
  '{"s":"x"}trailing',
  '{"s":"x",}',
  'not json',
  '[1,2]',
  '{"7":"{1,2}","constructor":"c","__proto__":"p"}',
  // keys the target lacks: their values are still JSON the row path must parse, typed ones still revived
  '{"s":"a","zz":"bad \\a escape"}',
  '{"s":"a","zz":"raw\ttab"}',
  '{"s":"a","zz":{"$j":"\\q"}}',
  '{"s":"a","zz":"\\u00e9 fine"}',
  '{"s":"a","k\u0001":1}',
  '{"s":"a","typed_staged":"abc"}',
  '{"s":"a","typed_staged":"1.5"}',
  '{"s":"a","typed_staged":"12"}',
];

/** What the row path makes of one line: its COPY text, or its error. */
function rowPath(line: string, n: number, rowNo: number): { text: string } | { error: string; code: string } {
  const encoder = new CsvEncoder(TARGET, ORIGIN);
  encoder.rows = rowNo - 1;
  try {
    return { text: encoder.encodeTextRow(decodeLine(line, compileRowPlan(SCHEMA), n)) };
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code: string }).code };
  }
}

/**
 * The transcoder's COPY text of `lines` read in chunks of `piece` bytes, written in pieces of `pieceBytes` (64: most
 * lines are longer than a piece and get one of their own).
 */
async function transcode(
  lines: string[] | Buffer,
  piece: number,
  pieceBytes = 64,
): Promise<{ text: string } | { error: string; code: string }> {
  const chunks: string[] = [];
  const bytes = Buffer.isBuffer(lines) ? lines : Buffer.from(lines.map((l) => `${l}\n`).join(''));
  try {
    for await (const c of ndjsonToCopyText(pieces(bytes, piece), {
      schema: SCHEMA,
      columns: TARGET,
      origin: ORIGIN,
      pieceBytes,
    }))
      chunks.push(Buffer.from(c).toString('utf8'));
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code: string }).code };
  }
  return { text: chunks.join('') };
}

describe('NDJSON → COPY text (PostgreSQL sink transcoder)', () => {
  it('writes every line of encoded rows as the row path does, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(row, { maxLength: 12 }),
        fc.integer({ min: 1, max: 300 }),
        fc.constantFrom(64, 1000, 65_536),
        async (rows, piece, pieceBytes) => {
          const lines = rows.map((r) => encodeRow(r, compileRowPlan(SCHEMA)));
          const expected = lines.map((l, i) => rowPath(l, i + 1, i + 1));
          const firstError = expected.findIndex((e) => 'error' in e);
          const got = await transcode(lines, piece, pieceBytes);
          if (firstError >= 0) expect(got).toEqual(expected[firstError]);
          else
            expect(loaded(got)).toEqual(loaded({ text: expected.map((e) => (e as { text: string }).text).join('') }));
        },
      ),
      { numRuns: 600 },
    );
  });

  it('reads lines the encoder never writes as the row path does, errors included', async () => {
    for (const line of FOREIGN) {
      const first = rowPath('{"s":"first"}', 1, 1);
      const second = rowPath(line, 2, 2);
      const expected = 'error' in second ? second : { text: (first as { text: string }).text + second.text };
      for (const pieceBytes of [64, 65_536]) {
        const got = await transcode(['{"s":"first"}', line], 7, pieceBytes);
        expect(loaded(got), line).toEqual(loaded(expected));
      }
    }
  });

  it('reads a block that is not UTF-8 as the row path does (U+FFFD), and the valid lines around it', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"s":"before","at":"2024-01-01T00:00:00.500000Z"}\n{"s":"a'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('b","id":"5"}\n{"s":"after ü","id":"-12"}\n'),
    ]);
    const lines = bytes.toString('utf8').split('\n').filter(Boolean);
    expect(lines[1]).toContain('\ufffd');
    const expected = { text: lines.map((l, i) => (rowPath(l, i + 1, i + 1) as { text: string }).text).join('') };
    for (const [piece, pieceBytes] of [
      [5, 64],
      [1000, 65_536],
    ]) {
      expect(loaded(await transcode(bytes, piece, pieceBytes))).toEqual(loaded(expected));
      // what COPY receives is UTF-8 (PostgreSQL refuses the invalid bytes themselves)
      const out: Uint8Array[] = [];
      for await (const c of ndjsonToCopyText(pieces(bytes, piece), {
        schema: SCHEMA,
        columns: TARGET,
        origin: ORIGIN,
        pieceBytes,
      }))
        out.push(c);
      expect(isUtf8(Buffer.concat(out))).toBe(true);
    }
  });

  it('rejects NUL in text with the row path error (row_rejected, naming the column, slice and row)', async () => {
    const got = await transcode(['{"s":"ok"}', '{"s":"a\\u0000b"}'], 5);
    expect(got).toMatchObject({ code: 'row_rejected' });
    expect((got as { error: string }).error).toContain('Row 2 of slice 3');
    expect((got as { error: string }).error).toContain('"s"');
  });

  it('COPY text lines (encodeTextRow) load the same field texts as the CSV lines (encodeRow)', () => {
    fc.assert(
      fc.property(row, (r) => {
        let csv: string;
        try {
          csv = new CsvEncoder(TARGET, ORIGIN).encodeRow(r);
        } catch (err) {
          expect(() => new CsvEncoder(TARGET, ORIGIN).encodeTextRow(r)).toThrow((err as Error).message);
          return;
        }
        const copy = new CsvEncoder(TARGET, ORIGIN).encodeTextRow(r);
        expect(copyFields(copy)).toEqual(csvFields(csv));
      }),
      { numRuns: 1000 },
    );
  });
});

/**
 * What COPY loads from a transcoder's result: the fields of every line (escapes undone), or the error. The
 * transcoder may escape differently from the row path (`\"` where the row path writes `"`): the loaded text is what must
 * be equal.
 */
function loaded(r: { text: string } | { error: string; code: string }): unknown {
  if ('error' in r) return r;
  const lines = r.text.split('\n');
  expect(lines.pop()).toBe('');
  return lines.map((l) => copyFields(`${l}\n`));
}

/** Fields of one CSV line as `FORMAT csv` reads them (unquoted empty: NULL). */
function csvFields(line: string): (string | null)[] {
  const out: (string | null)[] = [];
  let i = 0;
  const s = line.slice(0, -1);
  while (i <= s.length) {
    if (s[i] === '"') {
      let v = '';
      i++;
      while (true) {
        const q = s.indexOf('"', i);
        v += s.slice(i, q);
        if (s[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      i++; // the comma
    } else {
      let e = s.indexOf(',', i);
      if (e < 0) e = s.length;
      out.push(e === i ? null : s.slice(i, e));
      i = e + 1;
    }
  }
  return out;
}

/** Fields of one COPY text line as COPY's text format reads them. */
function copyFields(line: string): (string | null)[] {
  return line
    .slice(0, -1)
    .split('\t')
    .map((f) => (f === '\\N' ? null : unescapeCopy(f, 1)));
}

// --- export: COPY text → NDJSON -----------------------------------------------------------------------------------

const P = createTypeParsers();
/** [name, type OID, schema type, texts PostgreSQL prints for the type (and a few it does not)] */
const TYPES: [string, number, string, string[]][] = [
  ['i8', 20, 'int64', ['0', '-9223372036854775808', '9223372036854775807', '42', '007', '-0']],
  ['i4', 23, 'int32', ['0', '-2147483648', '2147483647', '12', '012']],
  ['i2', 21, 'int32', ['-32768', '5']],
  ['num', 1700, 'decimal', ['NaN', 'Infinity', '-1e-30', '12345678901234567890.1234567890', '0.00']],
  ['f8', 701, 'float64', ['NaN', 'Infinity', '-Infinity', '-0', '1e+300', '0.1', '1.5e-7']],
  ['f4', 700, 'float64', ['3.4028235e+38', '1.1']],
  ['b', 16, 'boolean', ['t', 'f']],
  ['d', 1082, 'date', ['2024-02-29', 'infinity', '4713-01-01 BC']],
  [
    'ts',
    1114,
    'timestamp',
    ['2024-03-01 12:34:56.123456', '2024-03-01 12:34:56', '1700-01-01 00:00:00', '2250-12-31 23:59:59.999999'],
  ],
  [
    'tstz',
    1184,
    'timestamp',
    [
      '2024-03-01 12:34:56.1+00',
      '2024-03-01 00:00:00+00',
      '1699-12-31 23:59:59.999999+00',
      '2251-01-01 00:00:00+00',
      '0044-03-15 12:00:00+00 BC',
      'infinity',
      '-infinity',
      '294276-12-31 23:59:59.999999+00',
    ],
  ],
  ['j', 114, 'json', ['{"b": 1.50, "a": "x\\"y"}', '[]', '"s"', '{"k": "\\u0000"}', '{"p": "a\\\\b\\tc"}', '{"ü": 1}']],
  ['jb', 3802, 'json', ['{"big": 12345678901234567890123}', '{"t": "tab\\there"}']],
  ['by', 17, 'binary', ['\\x', '\\x00ff10']],
  [
    't',
    25,
    'string',
    [
      '',
      'a\tb',
      'back\\slash',
      'nl\nx',
      'ü€😀',
      '\\N',
      '"q"',
      '\u0001ctl',
      'v\vt',
      'b\bf\f',
      'del\u007f',
      'cr\r',
      '\\',
    ],
  ],
  ['ai', 1007, 'json', ['{1,NULL,3}', '{}', '{{1,2},{3,4}}']],
  ['at', 1009, 'json', ['{"a,b","c\\"d",NULL}']],
  ['other', 600, 'string', ['(1,2)']],
];

/** A value as PostgreSQL's COPY TO writes it in text format: backslash, \b \f \n \r \t \v escaped, others raw. */
function pgCopyEscape(t: string): string {
  const ESC: Record<string, string> = {
    '\\': '\\\\',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
  };
  return t.replace(/[\\\b\f\n\r\t\v]/g, (c) => ESC[c]);
}

function columnsOf(names: string[]): CopyTextColumn[] {
  return names.map((name) => {
    const [, oid] = TYPES.find((t) => t[0] === name) ?? ['', 25];
    return { name, typname: '', typcategory: '', parse: P.getTypeParser(oid as number, 'text') };
  });
}

describe('COPY text → NDJSON (PostgreSQL source transcoder)', () => {
  const cell = fc.oneof(
    ...TYPES.map(([name, , , texts]) =>
      fc.tuple(fc.constant(name), fc.oneof(fc.constantFrom(...texts), fc.constant(null))),
    ),
  );
  it('writes the NDJSON lines the row path writes for the rows the type parsers make, byte for byte', async () => {
    // hostile column names: integer-like ones come first in a row object's key order, __proto__ stays data
    const renamed = (name: string, i: number) => (i % 5 === 1 ? String(i) : i % 7 === 2 ? '__proto__' : name);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(cell, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 200 }),
        async (rows, piece) => {
          // one column layout per run: the types of the first row; other rows take its types' texts
          const layout = rows[0].map(([name], i) => ({ type: name, name: renamed(name, i) }));
          const seen = new Set<string>();
          const cols = layout.filter((c) => !seen.has(c.name) && seen.add(c.name));
          const columns = columnsOf(cols.map((c) => c.type)).map((c, i) => ({ ...c, name: cols[i].name }));
          const schema: RecordSchema = {
            fields: cols.map((c) => ({
              name: c.name,
              type: TYPES.find((t) => t[0] === c.type)![2] as 'string',
              nullable: true,
            })),
          };
          const texts = rows.map((r) =>
            cols.map((c) => {
              const mine = r.find(([name]) => name === c.type);
              if (mine) return mine[1];
              const [, , , options] = TYPES.find((t) => t[0] === c.type)!;
              return options[r.length % options.length];
            }),
          );
          const copy = texts
            .map((r) => `${r.map((t) => (t === null ? '\\N' : pgCopyEscape(t))).join('\t')}\n`)
            .join('');
          const plan = compileRowPlan(schema);
          const expected = texts
            .map((r) => {
              const row: Row = {};
              for (let i = 0; i < r.length; i++) {
                const t = r[i];
                Object.defineProperty(row, columns[i].name, {
                  value: t === null ? null : columns[i].parse(t),
                  enumerable: true,
                  writable: true,
                  configurable: true,
                });
              }
              return `${encodeRow(row, plan)}\n`;
            })
            .join('');
          const t = await copyToNdjson(columns, schema);
          const out: Uint8Array[] = [];
          for await (const c of pieces(Buffer.from(copy), piece)) out.push(...t.push(c));
          out.push(...t.end());
          expect(Buffer.concat(out).toString('utf8')).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads bytes that are not UTF-8 as the row path does (U+FFFD, as pg decodes them)', async () => {
    const columns = columnsOf(['t', 'j', 'i8']);
    const schema: RecordSchema = {
      fields: [
        { name: 't', type: 'string', nullable: true },
        { name: 'j', type: 'json', nullable: true },
        { name: 'i8', type: 'int64', nullable: true },
      ],
    };
    const line = Buffer.concat([
      Buffer.from('a'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('b\t{"k": "'),
      Buffer.from([0xe2, 0x82]),
      Buffer.from('"}\t7\n'),
    ]);
    const t = await copyToNdjson(columns, schema);
    const out = Buffer.concat([...t.push(line), ...t.end()]);
    const [a, j] = line.toString('utf8').slice(0, -1).split('\t');
    const row: Row = { t: columns[0].parse(a), j: columns[1].parse(j), i8: columns[2].parse('7') };
    // compared as bytes: raw invalid bytes in the output would decode to the same string
    expect(out.equals(Buffer.from(`${encodeRow(row, compileRowPlan(schema))}\n`, 'utf8'))).toBe(true);
  });

  it('refuses COPY text that ends inside a row or has another number of fields', async () => {
    const columns = columnsOf(['i8', 't']);
    const schema: RecordSchema = {
      fields: [
        { name: 'i8', type: 'int64', nullable: true },
        { name: 't', type: 'string', nullable: true },
      ],
    };
    const cut = await copyToNdjson(columns, schema);
    cut.push(Buffer.from('1\ta\n2\tb'));
    expect(() => cut.end()).toThrow(/ended inside row 2/);
    const wide = await copyToNdjson(columns, schema);
    expect(() => wide.push(Buffer.from('1\ta\tx\n'))).toThrow(/more fields/);
    const narrow = await copyToNdjson(columns, schema);
    expect(() => narrow.push(Buffer.from('1\n'))).toThrow(/fewer fields/);
  });
});
