/**
 * The pg-copy codec without a server: COPY text escapes both ways, NULL versus the text `\N`, octal and hex escapes
 * PostgreSQL accepts, rows split across chunks anywhere (inside a multi-byte character too), and malformed text
 * refused with `staging_corrupt`.
 */
import { describe, expect, it } from 'vitest';
import { IngestError, type RecordSchema, type Row } from '../../../src/index.js';
import { pgCopyCodec } from '../../../src/postgres/index.js';

const schema: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false },
    { name: 't', type: 'string', nullable: true },
    { name: 'b', type: 'binary', nullable: true },
    { name: 'ok', type: 'boolean', nullable: true },
  ],
};

async function decode(text: string | Buffer, size = Infinity): Promise<Row[]> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const out: Row[] = [];
  for await (const batch of pgCopyCodec().decode(
    (async function* () {
      for (let i = 0; i < bytes.length; i += Math.min(size, bytes.length)) yield bytes.subarray(i, i + size);
    })(),
    schema,
  ))
    out.push(...batch);
  return out;
}

async function encode(rows: Row[]): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of pgCopyCodec().encode(
    (async function* () {
      yield rows;
    })(),
    schema,
  ))
    parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

describe('pgCopyCodec', () => {
  it('escapes backslash, newline, carriage return and tab; NULL is \\N, the text "\\N" is not NULL', async () => {
    const rows: Row[] = [
      { id: 1n, t: 'a\\b\nc\rd\te', b: new Uint8Array([0, 9, 10, 92]), ok: true },
      { id: 2n, t: '\\N', b: null, ok: false },
      { id: 3n, t: null, b: new Uint8Array(), ok: null },
      { id: 4n, t: '', b: null, ok: null },
      { id: 5n, t: 'ü € 😀 \\.', b: null, ok: null },
    ];
    const text = await encode(rows);
    expect(text.split('\n')).toHaveLength(6);
    expect(text).toContain('1\ta\\\\b\\nc\\rd\\te\t\\\\x00090a5c\tt\n');
    expect(text).toContain('2\t\\\\N\t\\N\tf\n');
    expect(text).toContain('3\t\\N\t\\\\x\t\\N\n');
    for (const size of [1, 2, 3, 7, 1000]) expect(await decode(text, size)).toEqual(rows);
  });

  it('reads the octal and hex escapes PostgreSQL accepts, and any other escaped character as itself', async () => {
    const rows = await decode('1\t\\101\\x42\\103\\\\x\\a\\v\\b\\f\tnull\t\\N\n'.replace('null', '\\N'));
    expect(rows).toEqual([{ id: 1n, t: 'ABC\\xa\v\b\f', b: null, ok: null }]);
    // octal escapes of UTF-8 bytes make one character
    expect((await decode('2\t\\303\\274\t\\N\t\\N\n'))[0].t).toBe('ü');
  });

  it('refuses malformed text with staging_corrupt', async () => {
    for (const bad of [
      '1\tonly two\n',
      '1\ta\tb\tc\td\n',
      '1\tend\\',
      '1\ta\t\\N\t\\N\n2\tno newline\t\\N\t\\N',
      'x\t\\N\t\\N\t\\N\n',
    ]) {
      const err = await decode(bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(IngestError.is(err, 'staging_corrupt'), `${JSON.stringify(bad)}: ${String(err)}`).toBe(true);
    }
  });

  it('needs a schema (the column order) in both directions', async () => {
    const codec = pgCopyCodec();
    const run = async (fn: () => AsyncIterable<unknown>) => {
      for await (const _ of fn());
    };
    await expect(run(() => codec.decode((async function* () {})()))).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(run(() => codec.encode((async function* () {})()))).rejects.toMatchObject({ code: 'config_invalid' });
  });
});
