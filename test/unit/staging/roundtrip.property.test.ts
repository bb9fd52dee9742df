import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import {
  MemoryObjectStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type RecordCodec,
  type Row,
  type StagingProvider,
  type Value,
} from '../../../src/index.js';
import { S3ObjectStore } from '../../../src/s3/index.js';
import { testContext } from '../../../src/testing/index.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../../helpers/s3.js';
import { jsonTextArb, kinds, timestampArb } from '../../helpers/values.js';

const tempRoot = mkdtempSync(join(tmpdir(), 'nucleus-roundtrip-'));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

/** An object built with defineProperty, so keys such as `__proto__` are plain data. */
function objectOf(entries: Array<[string, Value]>): Record<string, Value> {
  const o: Record<string, Value> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const key = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', '$i', '$o', '$d', '$b', '$f', '$s', '', 'id'),
  },
);

const scalar: fc.Arbitrary<Value> = fc.oneof(
  timestampArb,
  jsonTextArb,
  fc.constant(null),
  fc.boolean(),
  fc.double(), // NaN, ±Infinity and -0 included
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', '{"$i":"1"}', '\n', '\u2028', 'ü😀'),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 8 }),
);

const { value } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.uniqueArray(fc.tuple(key, tie('value')), { selector: (e) => e[0], maxLength: 3 }).map(objectOf),
  ),
}));

const row: fc.Arbitrary<Row> = fc
  .uniqueArray(fc.tuple(key, value), { selector: (e) => e[0], maxLength: 5 })
  .map(objectOf);
/** Slices of batches of rows; empty batches and empty slices included. */
const slices = fc.array(fc.array(fc.array(row, { maxLength: 6 }), { maxLength: 4 }), { minLength: 1, maxLength: 3 });

/** Codecs, with a run-count factor (Arrow sessions are slower to set up). */
const codecs: Array<[string, () => 'ndjson' | 'ndjson.gz' | RecordCodec, number]> = [
  ['ndjson', () => 'ndjson', 1],
  ['ndjson.gz', () => 'ndjson.gz', 1],
  ['arrow', () => arrowCodec({ batchRows: 4 }), 0.5],
];

const providers: Array<[string, () => StagingProvider, number]> = [
  ['MemoryStagingProvider', () => new MemoryStagingProvider(), 60],
];
let fsCount = 0;
for (const [codecName, codec, factor] of codecs) {
  providers.push(
    [
      `MemoryObjectStore × ${codecName}`,
      () => new ObjectStoreStagingProvider({ store: new MemoryObjectStore(), codec: codec() }),
      60 * factor,
    ],
    [
      `FileSystemObjectStore × ${codecName}`,
      () =>
        new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: join(tempRoot, `fs-${++fsCount}`) }),
          codec: codec(),
        }),
      20 * factor,
    ],
    [
      `S3ObjectStore × ${codecName}`,
      () =>
        new ObjectStoreStagingProvider({
          store: new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() }),
          codec: codec(),
          prefix: uniquePrefix('roundtrip'),
        }),
      12 * factor,
    ],
  );
}

describe('staging round-trip (property)', () => {
  for (const [name, factory, numRuns] of providers) {
    it(`${name}: random rows come back equal, in order, in chunks of the requested size`, async () => {
      const provider = factory();
      await fc.assert(
        fc.asyncProperty(
          slices,
          fc.integer({ min: 1, max: 9 }),
          fc.boolean(),
          async (written, chunkSize, concurrent) => {
            const session = await provider.allocateSession(testContext());
            const writeSlice = async (batches: Row[][], index: number) => {
              const w = session.writer({ slice: index });
              for (const b of batches) await w.writeBatch(b);
              await w.close();
            };
            if (concurrent) await Promise.all(written.map(writeSlice));
            else for (const [i, batches] of written.entries()) await writeSlice(batches, i);
            await session.seal();

            const reopened = await provider.openSession(JSON.parse(JSON.stringify(session.ref)));
            const batches: Row[][] = [];
            for await (const b of reopened.reader().iterBatches(chunkSize)) batches.push(b);

            const expected = written.map((s) => s.flat());
            expect(batches.flat()).toEqual(expected.flat());
            // and of the same kind: a Timestamp comes back a Timestamp, a Date a Date, a JsonText a JsonText
            expect(kinds(batches.flat())).toEqual(kinds(expected.flat()));
            // Exactly chunkSize rows per batch, except the last batch of each slice.
            const sizes = expected.flatMap((rows) => {
              const out: number[] = [];
              for (let left = rows.length; left > 0; left -= chunkSize) out.push(Math.min(chunkSize, left));
              return out;
            });
            expect(batches.map((b) => b.length)).toEqual(sizes);
            for (const [i, rows] of expected.entries()) {
              const one: Row[] = [];
              for await (const b of reopened.reader({ slice: i }).iterBatches(chunkSize)) one.push(...b);
              expect(one).toEqual(rows);
            }
            await session.destroy();
          },
        ),
        { numRuns },
      );
    });
  }

  it('keeps __proto__ as data through every provider and codec', async () => {
    for (const [, factory] of providers) {
      const provider = factory();
      const session = await provider.allocateSession(testContext());
      const w = session.writer({ slice: 0 });
      await w.writeBatch([JSON.parse('{"__proto__":{"polluted":true},"nested":{"__proto__":[1]}}')]);
      await w.close();
      await session.seal();
      const rows: Row[] = [];
      for await (const b of session.reader().iterBatches(10)) rows.push(...b);
      expect(Object.hasOwn(rows[0], '__proto__')).toBe(true);
      expect(Object.getPrototypeOf(rows[0])).toBe(Object.prototype);
      expect(Object.hasOwn(rows[0].nested as object, '__proto__')).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});
