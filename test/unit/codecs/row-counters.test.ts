/**
 * Row counters count a codec's rows without decoding (staging verifies and stages encoded bytes with them): the
 * count equals the decoded rows for every way of cutting the bytes into chunks, and bytes that end inside a row
 * (or an Arrow message) are refused.
 */
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../../src/arrow/index.js';
import { ndjsonCodec, ndjsonGzipCodec, type RecordCodec, type Row } from '../../../src/index.js';
import { mySqlLoadDataCodec } from '../../../src/mysql/index.js';
import { pgCopyCodec } from '../../../src/postgres/index.js';

const schema = {
  fields: [
    { name: 'id', type: 'int64' as const, nullable: false },
    { name: 'x', type: 'string' as const, nullable: true },
  ],
};

async function encode(codec: RecordCodec, batches: Row[][], withSchema = true): Promise<Buffer> {
  async function* feed() {
    for (const b of batches) yield b;
  }
  const out: Uint8Array[] = [];
  for await (const c of codec.encode(feed(), withSchema ? schema : undefined)) out.push(c);
  return Buffer.concat(out);
}

async function decodedRows(codec: RecordCodec, bytes: Buffer, withSchema = true): Promise<number> {
  let n = 0;
  for await (const b of codec.decode(
    (async function* () {
      yield bytes;
    })(),
    withSchema ? schema : undefined,
  ))
    n += b.length;
  return n;
}

function count(codec: RecordCodec, bytes: Buffer, size: number): number {
  const counter = codec.rowCounter!();
  for (let i = 0; i < bytes.length; i += size) counter.push(bytes.subarray(i, i + size));
  return counter.end();
}

const batches: Row[][] = Array.from({ length: 7 }, (_, i) =>
  Array.from({ length: 300 + i }, (_, j) => ({
    id: BigInt(i * 1000 + j),
    x: j % 11 === 0 ? null : `line\n${'tab\t'.repeat(j % 5)}\\ ü 😀 ${j}`,
  })),
);
const total = batches.reduce((n, b) => n + b.length, 0);

describe('row counters', () => {
  it('pg-copy: one row per newline byte, escaped newlines in values do not count', async () => {
    const codec = pgCopyCodec();
    const bytes = await encode(codec, batches);
    expect(await decodedRows(codec, bytes)).toBe(total);
    for (const size of [1, 2, 5, 64, 4096, bytes.length]) expect(count(codec, bytes, size)).toBe(total);
    expect(count(codec, Buffer.alloc(0), 1)).toBe(0);
    expect(() => count(codec, bytes.subarray(0, bytes.length - 1), 100)).toThrow(/inside a row/);
  });

  it('arrow: record batch lengths from message metadata, across schema changes and any chunking', async () => {
    const codec = arrowCodec({ batchRows: 97 });
    // no schema: the codec widens mid-stream (a new key) and starts a second IPC stream
    const widened = batches.map((b, i) => (i === 3 ? [...b, { id: 99_999n, x: 'new key', extra: true }] : b));
    const bytes = await encode(codec, widened, false);
    expect(await decodedRows(codec, bytes, false)).toBe(total + 1);
    for (const size of [1, 3, 8, 100, 65536, bytes.length]) expect(count(codec, bytes, size)).toBe(total + 1);
    expect(() => count(codec, bytes.subarray(0, bytes.length - 3), 1000)).toThrow(/inside a message/);
  });

  it('codecs whose rows are lines say so (rowsAreLines: policy.maxRowBytes applies to their lines); others do not', async () => {
    for (const codec of [ndjsonCodec(), pgCopyCodec(), mySqlLoadDataCodec()]) {
      expect(codec.rowsAreLines, codec.id).toBe(true);
      const bytes = await encode(codec, batches);
      expect(bytes.filter((b) => b === 0x0a).length, codec.id).toBe(total);
      expect(bytes.at(-1), codec.id).toBe(0x0a);
    }
    for (const codec of [ndjsonGzipCodec(), arrowCodec()]) expect(codec.rowsAreLines, codec.id).toBeFalsy();
  });
});
