import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecordSchema } from '../../../src/index.js';
import { escapeLoadData, loadDataFieldPlans, loadDataLineParser } from '../../../src/mysql/load-data-codec.js';
import { type CopyColumn, CsvEncoder } from '../../../src/postgres/copy-encoding.js';
import { loadDataToCopyText } from '../../../src/postgres/load-data-to-copy.js';

/*
 * The LOAD DATA text → COPY text transcoder (MariaDB/MySQL → PostgreSQL, `mysql-tsv` staging) against the row path it
 * replaces (`loadDataLineParser` + `CsvEncoder.encodeTextRow`), on classes of field texts: every line must come out
 * byte for byte as the row path writes it, and the first line the row path refuses must be refused with the same
 * error.
 */

const SCHEMA: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false },
    { name: 'i', type: 'int32', nullable: true },
    { name: 'ok', type: 'boolean', nullable: true },
    { name: 'f', type: 'float64', nullable: true },
    { name: 'd', type: 'decimal', nullable: true },
    { name: 'dt', type: 'timestamp', nullable: true },
    { name: 'tz', type: 'timestamp', nullable: true, logical: { withTimeZone: true } } as never,
    { name: 'j', type: 'json', nullable: true },
    { name: 'bin', type: 'binary', nullable: true },
    { name: 's', type: 'string', nullable: true },
    { name: 'day', type: 'date', nullable: true },
    { name: 'bits', type: 'string', nullable: true, native: { dialect: 'mysql', type: 'bit(5)' } },
    { name: 'sj', type: 'string', nullable: true },
    { name: 'ij', type: 'int32', nullable: true },
    { name: 'constructor', type: 'string', nullable: true },
    { name: 'only_staged', type: 'int64', nullable: true },
  ],
};
/** Target columns in another order: json targets for `j`, `sj`, `ij`; one the staging lacks; `only_staged` left out. */
const TARGET: CopyColumn[] = [
  { name: 'missing', kind: 'scalar' },
  { name: 's', kind: 'scalar' },
  { name: 'id', kind: 'scalar' },
  { name: 'i', kind: 'scalar' },
  { name: 'ok', kind: 'scalar' },
  { name: 'f', kind: 'scalar' },
  { name: 'd', kind: 'scalar' },
  { name: 'dt', kind: 'scalar' },
  { name: 'tz', kind: 'scalar' },
  { name: 'j', kind: 'json' },
  { name: 'bin', kind: 'bytea' },
  { name: 'day', kind: 'scalar' },
  { name: 'bits', kind: 'scalar' },
  { name: 'sj', kind: 'json' },
  { name: 'ij', kind: 'json' },
  { name: 'constructor', kind: 'scalar' },
];
/** The same target without json columns for staged strings and ints: every field can be read as bytes. */
const TARGET_PLAIN: CopyColumn[] = TARGET.map((c) =>
  c.name === 'sj' || c.name === 'ij' ? { ...c, kind: 'scalar' } : c,
);
const ORIGIN = { slice: 2, table: '"public"."t"' };
const NULL = '\\N';

/**
 * A field's text: mostly one the transcoder copies (`fast`), now and then one the row path reads but the transcoder
 * sends through it (`slow`), rarely one the row path may refuse (the shared odd texts and `bad`).
 */
const field = (fast: fc.Arbitrary<string>, slow: string[], ...bad: string[]) =>
  fc.oneof(
    { weight: 80, arbitrary: fc.oneof({ weight: 12, arbitrary: fast }, { weight: 1, arbitrary: fc.constant(NULL) }) },
    ...(slow.length ? [{ weight: 3, arbitrary: fc.constantFrom(...slow) }] : []),
    { weight: 1, arbitrary: fc.constantFrom('', 'x', ' 1', '+1', '0x1f', 'a\\tb', '\\0', 'end\\', ...bad) },
  );
const int = field(fc.integer().map(String), ['007', '-0'], '99999999999');
const bigint = field(
  fc.oneof(
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map(String),
    fc.constantFrom('18446744073709551615', '-9223372036854775808'),
  ),
  ['00', '-0'],
  '123456789012345678901',
);
const bool = field(fc.constantFrom('1', '0'), [], '2', 't', 'true', '01');
const float = field(fc.double().map(String), ['1e20', '1.5E+3', '-0', '1.7976931348623157e308', '.5']);
const decimal = field(fc.constantFrom('12.50', '-0.001', '0', '12345678901234567890.0123456789'), []);
const timestamp = field(
  fc
    .date({ min: new Date('1700-01-01T00:00:00Z'), max: new Date('2250-12-31T23:59:59Z'), noInvalidDate: true })
    .chain((d) =>
      fc
        .constantFrom('', '.0', '.5', '.000000', '.123456', '.100', '.999999')
        .map((f) => `${d.toISOString().slice(0, 19).replace('T', ' ')}${f}`),
    ),
  ['1699-12-31 23:59:59', '2251-01-01 00:00:00', '0001-01-01 00:00:00', '9999-12-31 23:59:59.999999'],
  '2023-02-29 12:00:00',
  '2024-01-01T00:00:00',
  '2024-01-01 24:00:00',
  '2024-01-01 00:00:00.',
  '2024-01-01 00:00:00.1234567',
);
const text = field(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 10 }).map(escapeLoadData),
    fc.constantFrom('', 'back\\\\slash', 'ü€😀', 'a\\tb\\nc\\rd'),
  ),
  ['a\\Zb', 'a\\bb', 'x\\qy', 'cr\rraw', '\\.', 'a\\N'],
);
const json = field(fc.constantFrom('{"a": 1.50}', '[1, null, "x\\\\ty"]', '"s"', '{"k":"a\\\\nb"}', 'not json'), [
  'a\\Zb',
]);
const hex = field(
  fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b).toString('hex')),
  ['00FF', 'AbCd'],
  'abc',
  'zz',
);
const date = field(fc.constantFrom('2024-01-01', '1000-01-01', '9999-12-31'), []);
const bits = field(fc.constantFrom('10101', '00000'), []);

const FIELDS = [
  bigint,
  int,
  bool,
  float,
  decimal,
  timestamp,
  timestamp,
  json,
  hex,
  text,
  date,
  bits,
  text,
  int,
  text,
  bigint,
];
const line = fc.oneof(
  { weight: 20, arbitrary: fc.tuple(...FIELDS).map((f) => f.join('\t')) },
  { weight: 1, arbitrary: fc.tuple(...FIELDS).map((f) => f.slice(1).join('\t')) },
  { weight: 1, arbitrary: fc.tuple(...FIELDS).map((f) => [...f, '1'].join('\t')) },
);

/** What the row path makes of one line: its COPY text, or its error. */
function rowPath(l: string, n: number, columns = TARGET): { text: string } | { error: string; code: string } {
  const encoder = new CsvEncoder(columns, ORIGIN);
  encoder.rows = n - 1;
  try {
    return { text: encoder.encodeTextRow(loadDataLineParser(loadDataFieldPlans(SCHEMA, 'decode'))(l, n)) };
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code: string }).code };
  }
}

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(bytes.length, at + size));
}

/** The transcoder's COPY text of `bytes` read in chunks of `piece` bytes, written in pieces of `pieceBytes`. */
async function transcode(
  bytes: Buffer,
  piece: number,
  pieceBytes = 64,
  schema = SCHEMA,
  columns = TARGET,
): Promise<{ text: string; rows: number; error?: string; code?: string }> {
  const out: Buffer[] = [];
  let rows = 0;
  try {
    for await (const c of loadDataToCopyText(pieces(bytes, piece), {
      schema,
      columns,
      origin: ORIGIN,
      pieceBytes,
      onRows: (n) => {
        rows += n;
      },
    }))
      out.push(Buffer.from(c));
  } catch (err) {
    const text = Buffer.concat(out).toString('utf8');
    return { text, rows, error: (err as Error).message, code: (err as { code: string }).code };
  }
  return { text: Buffer.concat(out).toString('utf8'), rows };
}

describe('LOAD DATA text → COPY text (PostgreSQL sink transcoder of mysql-tsv staging)', () => {
  it('writes every line as the row path does, and refuses the first line it refuses with its error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 10 }),
        fc.integer({ min: 1, max: 300 }),
        fc.constantFrom(64, 1000, 65_536),
        fc.constantFrom(
          TARGET,
          TARGET_PLAIN,
          TARGET_PLAIN.map((c) => (c.name === 'sj' ? { ...c, kind: 'json' as const } : c)),
          TARGET_PLAIN.map((c) => (c.name === 'ij' ? { ...c, kind: 'json' as const } : c)),
        ),
        async (lines, piece, pieceBytes, columns) => {
          const expected = lines.map((l, i) => rowPath(l, i + 1, columns));
          const firstError = expected.find((e) => 'error' in e);
          const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
          const got = await transcode(bytes, piece, pieceBytes, SCHEMA, columns);
          if (firstError) {
            // the error is the row path's, and what came out before it is a prefix of the lines before that line
            expect({ error: got.error, code: got.code }).toEqual(firstError);
            const before = expected.slice(0, expected.indexOf(firstError)).map((e) => (e as { text: string }).text);
            expect(before.join('').startsWith(got.text)).toBe(true);
          } else
            expect(got).toEqual({
              text: expected.map((e) => (e as { text: string }).text).join(''),
              rows: lines.length,
            });
        },
      ),
      { numRuns: 800 },
    );
  });

  it('copies the fields of a typical MariaDB row as they stand, timestamps rewritten as pgText writes them', async () => {
    const l = [
      '42',
      '-7',
      '1',
      '0.5',
      '12.50',
      '2024-01-02 03:04:05.120000',
      '2024-06-30 23:59:59.000000',
      '{"a": [1, "x\\\\ty"]}',
      '00ff0a5c',
      'tab\\there\\nnl ü',
      '2024-01-01',
      '10101',
      'plain',
      '5',
      NULL,
      '9',
    ].join('\t');
    const got = await transcode(Buffer.from(`${l}\n`), 1 << 16, 1 << 16, SCHEMA, TARGET_PLAIN);
    expect(got).toEqual({
      text: `\\N\ttab\\there\\nnl ü\t42\t-7\tt\t0.5\t12.50\t2024-01-02 03:04:05.12\t2024-06-30 23:59:59+00\t{"a": [1, "x\\\\ty"]}\t\\\\x00ff0a5c\t2024-01-01\t10101\tplain\t5\t\\N\n`,
      rows: 1,
    });
    expect(got).toEqual({ ...rowPath(l, 1, TARGET_PLAIN), rows: 1 });
  });

  it('reads a line that is not UTF-8 as the row path does (U+FFFD), and the lines around it as bytes', async () => {
    const schema: RecordSchema = { fields: [{ name: 's', type: 'string', nullable: true }] };
    const columns: CopyColumn[] = [{ name: 's', kind: 'scalar' }];
    const bytes = Buffer.concat([Buffer.from('before\na'), Buffer.from([0xff, 0xc3]), Buffer.from('b\nafter ü\n')]);
    for (const piece of [1, 3, 1000])
      expect(await transcode(bytes, piece, 64, schema, columns)).toEqual({
        text: 'before\na\ufffd\ufffdb\nafter ü\n',
        rows: 3,
      });
  });

  it('refuses NUL with the row path error (row_rejected naming the column, slice and row)', async () => {
    const schema: RecordSchema = { fields: [{ name: 's', type: 'string', nullable: true }] };
    const columns: CopyColumn[] = [{ name: 's', kind: 'scalar' }];
    const got = await transcode(Buffer.from('ok\na\\0b\n'), 4, 64, schema, columns);
    expect(got).toMatchObject({ code: 'row_rejected' });
    expect((got as { error: string }).error).toContain('Row 2 of slice 2');
    expect((got as { error: string }).error).toContain('"s"');
  });

  it('refuses text that ends inside a row as staging_corrupt, as the row path does', async () => {
    const schema: RecordSchema = { fields: [{ name: 's', type: 'string', nullable: true }] };
    const columns: CopyColumn[] = [{ name: 's', kind: 'scalar' }];
    const got = await transcode(Buffer.from('a\nb'), 1, 64, schema, columns);
    expect(got).toMatchObject({ code: 'staging_corrupt' });
    expect((got as { error: string }).error).toContain('ends inside row 2');
  });

  it('refuses a line with fewer or more fields than the schema as the row path does (staging_corrupt)', async () => {
    const schema: RecordSchema = {
      fields: ['a', 'b', 'c'].map((name) => ({ name, type: 'string' as const, nullable: true })),
    };
    const columns: CopyColumn[] = schema.fields.map((f) => ({ name: f.name, kind: 'scalar' }));
    for (const [first, want] of [
      ['a\tb', 'line 1 has 2 columns'],
      ['a\tb\tc\td', 'line 1 has 4 columns'],
    ]) {
      const got = await transcode(Buffer.from(`${first}\nx\ty\tz\n`), 1 << 16, 1 << 16, schema, columns);
      expect(got).toMatchObject({ code: 'staging_corrupt', text: '' });
      expect(got.error).toContain(want);
    }
  });

  it('reads a single-column slice (no tab in any line) line by line', async () => {
    const schema: RecordSchema = { fields: [{ name: 's', type: 'string', nullable: true }] };
    const columns: CopyColumn[] = [{ name: 's', kind: 'scalar' }];
    const lines = Array.from({ length: 20_000 }, (_, i) => `value ${i}`);
    const got = await transcode(Buffer.from(lines.map((l) => `${l}\n`).join('')), 1 << 20, 1 << 16, schema, columns);
    expect(got).toEqual({ text: lines.map((l) => `${l}\n`).join(''), rows: 20_000 });
  });
});
