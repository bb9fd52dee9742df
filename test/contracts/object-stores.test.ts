import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryObjectStore } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { describeObjectStore } from '../../src/testing/vitest/index.js';
import { createTestS3Client, s3Target, testBucket } from '../helpers/s3.js';

const tempRoot = mkdtempSync(join(tmpdir(), 'nucleus-object-stores-'));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

describeObjectStore('MemoryObjectStore', () => new MemoryObjectStore({ bucket: 'contract' }), { manyKeys: 2500 });

let fsStores = 0;
describeObjectStore(
  'FileSystemObjectStore',
  () => new FileSystemObjectStore({ root: join(tempRoot, `fs-${++fsStores}`) }),
  { manyKeys: 1200 },
);

describeObjectStore(
  'S3ObjectStore',
  // A small page size makes the many-keys test follow continuation tokens; >1000-key batches are covered by
  // test/integration/s3-object-store.test.ts. s3rver lists folder by folder, so UTF-8 order is checked on real S3 only.
  () => new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket(), pageSize: 100 }),
  // s3rver also writes objects in place (a reader can see a half-written overwrite); real S3 does not.
  { manyKeys: 250, strictListOrder: !s3Target().local, atomicOverwrite: !s3Target().local },
);
