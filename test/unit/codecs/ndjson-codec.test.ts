import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  IngestError,
  ndjsonCodec,
  ndjsonGzipCodec,
  type RecordSchema,
  type Row,
  resolveCodec,
} from '../../../src/index.js';
import { decodeAll, encodeAll } from './codec-helpers.js';

const rows: Row[] = [
  { id: 1n, name: 'Ada', at: new Date(1000), bytes: new Uint8Array([1, 2]), tags: { a: [1, null] } },
  { id: 2n, name: 'Grace "G" \n ü😀', at: null, bytes: new Uint8Array(), tags: null },
  {},
];

const codes = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return IngestError.is(err) ? err.code : `not an IngestError: ${String(err)}`;
  }
  return 'no error';
};

describe('ndjsonCodec', () => {
  it('writes one JSON object per line and reads them back, whatever the chunking', async () => {
    const codec = ndjsonCodec();
    const bytes = await encodeAll(codec, [rows.slice(0, 2), [], rows.slice(2)]);
    const text = bytes.toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(4);
    for (const piece of [1, 3, 7, 64, 1 << 20]) expect(await decodeAll(codec, bytes, piece)).toEqual(rows);
  });

  it('reads chunks far larger than its text blocks (64 KiB) line for line, naming the right line on errors', async () => {
    const codec = ndjsonCodec();
    // lines from a few bytes to 90 KB (longer than a block), with empty lines between some of them
    const many: Row[] = Array.from({ length: 400 }, (_, i) => ({ i, pad: 'x'.repeat(i % 97 === 0 ? 90_000 : i * 13) }));
    const lines = many.map((r) => JSON.stringify(r));
    const text = `${lines.map((l, i) => (i % 50 === 0 ? `${l}\n` : l)).join('\n')}\n`;
    for (const piece of [1 << 20, 300_000, 65_536, 4_099]) {
      expect(await decodeAll(codec, Buffer.from(text), piece)).toEqual(many);
    }
    const physical = text.split('\n');
    const bad = physical.length - 3; // 0-based index of a line near the end
    physical[bad] = '{"broken":';
    const err = await decodeAll(codec, Buffer.from(physical.join('\n')), 1 << 20).catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_corrupt', details: { line: bad + 1 } });
  });

  it('names the same line on errors whatever the chunking, empty lines at chunk edges included', async () => {
    const codec = ndjsonCodec();
    const lines = Array.from({ length: 300 }, (_, i) => (i % 7 === 3 ? '' : JSON.stringify({ i, s: 'y'.repeat(i) })));
    lines[251] = '{"broken":';
    const text = Buffer.from(`${lines.join('\n')}\n`);
    for (const piece of [1, 2, 5, 64, 333, 4_099, 1 << 20]) {
      const err = await decodeAll(codec, text, piece).catch((e) => e);
      expect(err).toMatchObject({ code: 'staging_corrupt', details: { line: 252 } });
    }
  });

  it('accepts a final line without newline and skips empty lines', async () => {
    const codec = ndjsonCodec();
    const bytes = Buffer.from('{"a":1}\n\n{"a":{"$i":"2"}}', 'utf8');
    expect(await decodeAll(codec, bytes, 4)).toEqual([{ a: 1 }, { a: 2n }]);
  });

  it('reports a line cut in the middle as staging_corrupt', async () => {
    const codec = ndjsonCodec();
    const bytes = await encodeAll(codec, [rows]);
    expect(await codes(decodeAll(codec, bytes.subarray(0, 20)))).toBe('staging_corrupt');
    expect(await codes(decodeAll(codec, Buffer.from('[1,2]\n')))).toBe('staging_corrupt');
  });

  it('refuses a line over maxLineBytes without buffering it whole', async () => {
    const codec = ndjsonCodec({ maxLineBytes: 100 });
    const long = Buffer.from(`{"s":"${'x'.repeat(10_000)}"}\n`);
    expect(await codes(decodeAll(codec, long, 16))).toBe('row_rejected');
    expect(await codes(decodeAll(codec, long))).toBe('row_rejected');
    expect(await decodeAll(codec, Buffer.from('{"s":"short"}\n'), 3)).toEqual([{ s: 'short' }]);
  });

  it('writes typed columns of a schema as bare strings and reads them back exactly', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'bytes', type: 'binary', nullable: true },
        { name: 'name', type: 'string', nullable: true },
      ],
    };
    const codec = ndjsonCodec();
    const typed: Row[] = [
      { id: 1n, at: new Date(5), bytes: new Uint8Array([9]), name: 'x' },
      // Values that do not fit their column still round-trip.
      { id: '123', at: 17, bytes: 'AA==', name: null },
      { id: null, at: new Date(Number.NaN), bytes: null, name: '{"$s":"1"}' },
    ];
    const bytes = await encodeAll(codec, [typed], schema);
    expect(bytes.toString().split('\n')[0]).toBe('{"id":"1","at":5,"bytes":"CQ==","name":"x"}');
    expect(await decodeAll(codec, bytes, 5, schema)).toEqual(typed);
  });

  it('validates its options', () => {
    expect(() => ndjsonCodec({ maxLineBytes: 0 })).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    expect(() => ndjsonCodec({ nope: 1 } as never)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});

describe('ndjsonGzipCodec', () => {
  it('round-trips through gzip', async () => {
    const codec = ndjsonGzipCodec({ level: 1 });
    const many = Array.from({ length: 5000 }, (_, i) => ({ i: BigInt(i), s: `row ${i}` }));
    const bytes = await encodeAll(codec, [many.slice(0, 10), many.slice(10)]);
    expect(bytes[0]).toBe(0x1f);
    expect(bytes[1]).toBe(0x8b);
    expect(await decodeAll(codec, bytes, 333)).toEqual(many);
  });

  it('stops a gzip bomb at maxDecompressedBytes', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)); // 50 MiB of spaces → ~50 KiB
    expect(bomb.byteLength).toBeLessThan(100 * 1024);
    const codec = ndjsonGzipCodec({ maxDecompressedBytes: 1024 * 1024 });
    const before = process.memoryUsage().rss;
    expect(await codes(decodeAll(codec, bomb, 4096))).toBe('staging_corrupt');
    expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
  });

  it('stops a single endless line at maxLineBytes', async () => {
    const line = gzipSync(Buffer.from(`{"s":"${'y'.repeat(5 * 1024 * 1024)}`));
    expect(await codes(decodeAll(ndjsonGzipCodec({ maxLineBytes: 64 * 1024 }), line))).toBe('row_rejected');
  });

  it('reports truncated or damaged gzip as staging_corrupt', async () => {
    const codec = ndjsonGzipCodec();
    const bytes = await encodeAll(codec, [rows]);
    expect(await codes(decodeAll(codec, bytes.subarray(0, bytes.byteLength - 6)))).toBe('staging_corrupt');
    expect(await codes(decodeAll(codec, Buffer.from('not gzip at all')))).toBe('staging_corrupt');
  });
});

describe('resolveCodec', () => {
  it('resolves ids and passes codecs through', () => {
    expect(resolveCodec().id).toBe('ndjson');
    expect(resolveCodec('ndjson').extension).toBe('.ndjson');
    expect(resolveCodec('ndjson.gz').extension).toBe('.ndjson.gz');
    const custom = ndjsonCodec();
    expect(resolveCodec(custom)).toBe(custom);
  });

  it('refuses unknown codecs with config_invalid', () => {
    expect(() => resolveCodec('csv' as never)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    expect(() => resolveCodec({ id: 'x' } as never)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});
