/**
 * The COPY text and LOAD DATA text decoders cap a line (64 MiB by default, `staging_corrupt` naming the line) and join
 * a line split across many chunks once, not by repeated concatenation.
 */
import { describe, expect, it } from 'vitest';
import {
  MemoryObjectStore,
  ObjectStoreStagingProvider,
  type RecordCodec,
  type RecordSchema,
  type Row,
} from '../../../src/index.js';
import { decodeLoadData, mySqlLoadDataCodec } from '../../../src/mysql/load-data-codec.js';
import { decodeCopyText } from '../../../src/postgres/copy-text.js';
import { pgCopyCodec } from '../../../src/postgres/index.js';
import { testContext } from '../../../src/testing/index.js';

const schema: RecordSchema = {
  fields: [
    { name: 'id', type: 'int32', nullable: false },
    { name: 't', type: 'string', nullable: true },
  ],
};
const MiB = 1024 * 1024;

async function* pieces(...parts: [Buffer, number][]): AsyncGenerator<Uint8Array> {
  for (const [buf, times] of parts) for (let i = 0; i < times; i++) yield buf;
}
async function rowsOf(batches: AsyncIterable<Row[]>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const b of batches) out.push(...b);
  return out;
}

const cases: [string, RecordCodec, typeof decodeCopyText][] = [
  ['COPY', pgCopyCodec(), decodeCopyText],
  ['LOAD DATA', mySqlLoadDataCodec(), decodeLoadData],
];

describe.each(cases)('%s text decoder line cap', (format, codec, decode) => {
  it('refuses a line over the default 64 MiB cap with staging_corrupt naming the line, before holding more', async () => {
    const first = Buffer.from('1\tshort\n2\t');
    const mib = Buffer.alloc(MiB, 'a');
    const err = await rowsOf(codec.decode(pieces([first, 1], [mib, 80]), schema)).catch((e) => e);
    expect(err).toMatchObject({
      code: 'staging_corrupt',
      message: `${format} text line 2 is longer than the line cap of ${64 * MiB} bytes`,
      details: { line: 2, maxLineBytes: 64 * MiB },
    });
  });

  it('applies a given cap, counting lines across chunks', async () => {
    const text = Buffer.from(`1\t${'x'.repeat(90)}\n2\t${'y'.repeat(101)}\n`);
    await expect(rowsOf(decode(pieces([text, 1]), schema, 100))).rejects.toMatchObject({
      code: 'staging_corrupt',
      details: { line: 2, maxLineBytes: 100 },
    });
    expect(await rowsOf(decode(pieces([text.subarray(0, 93), 1]), schema, 100))).toEqual([
      { id: 1, t: 'x'.repeat(90) },
    ]);
  });

  it('decodes a long line that arrives in 4,096 pieces into its exact value', async () => {
    const piece = Buffer.alloc(2048, 'z');
    const rows = await rowsOf(
      codec.decode(pieces([Buffer.from('7\t'), 1], [piece, 4096], [Buffer.from('\n8\t\\N\n'), 1]), schema),
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({ id: 7, t: 'z'.repeat(2048 * 4096) });
    expect(rows[1]).toEqual({ id: 8, t: null });
  });
});

describe('a staged slice with a line over the cap', () => {
  it('fails staging_corrupt naming the slice and the line', async () => {
    // the staged pg-copy codec, read with a 100-byte cap instead of 64 MiB
    const codec: RecordCodec = { ...pgCopyCodec(), decode: (bytes, s) => decodeCopyText(bytes, s, 100) };
    const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore(), codec });
    const session = await staging.allocateSession(testContext({ runId: 'r1' }));
    for (const rows of [
      [{ id: 1, t: 'a' }],
      [
        { id: 2, t: 'b' },
        { id: 3, t: 'c'.repeat(200) },
      ],
    ]) {
      const w = session.writer({ schema });
      await w.writeBatch(rows);
      await w.close();
    }
    await session.seal();
    const err = await rowsOf(session.reader().iterBatches(10)).catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_corrupt', retryable: false, details: { slice: 1 } });
    expect(err.message).toMatch(
      /slice 1 of staging session .*COPY text line 2 is longer than the line cap of 100 bytes/,
    );
  });
});
