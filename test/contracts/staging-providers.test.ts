import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryObjectStore, ObjectStoreStagingProvider, type RecordCodec } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { describeStagingProvider } from '../../src/testing/vitest/index.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';

const tempRoot = mkdtempSync(join(tmpdir(), 'nucleus-staging-contract-'));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

const codecs: Array<[string, () => 'ndjson' | 'ndjson.gz' | RecordCodec]> = [
  ['ndjson', () => 'ndjson'],
  ['ndjson.gz', () => 'ndjson.gz'],
  ['arrow', () => arrowCodec({ batchRows: 500 })],
];

let n = 0;
for (const [codecName, codec] of codecs) {
  describeStagingProvider(`ObjectStoreStagingProvider(MemoryObjectStore, ${codecName})`, () => {
    return new ObjectStoreStagingProvider({ store: new MemoryObjectStore(), codec: codec() });
  });
  describeStagingProvider(`ObjectStoreStagingProvider(FileSystemObjectStore, ${codecName})`, () => {
    const store = new FileSystemObjectStore({ root: join(tempRoot, `fs-${++n}`) });
    return new ObjectStoreStagingProvider({ store, codec: codec(), prefix: 'staging/contract' });
  });
  describeStagingProvider(
    `ObjectStoreStagingProvider(S3ObjectStore, ${codecName})`,
    () => {
      const store = new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() });
      // A prefix of its own: sweep only ever sees this suite's sessions.
      return new ObjectStoreStagingProvider({ store, codec: codec(), prefix: uniquePrefix('staging-contract') });
    },
    { manyRows: 3000 },
  );
}
