import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/** Starting a TypeScript child process takes seconds on a busy machine. */
const CHILD_TEST_TIMEOUT = 120_000;

import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { type ObjectStore, ObjectStoreStagingProvider, type Row, type StagingSessionRef } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { testContext } from '../../src/testing/index.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import { childRows } from './fixtures/staging-child.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./fixtures/staging-child.ts', import.meta.url));
const tempRoot = mkdtempSync(join(tmpdir(), 'nucleus-xproc-'));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

/** Run the child script; resolve to the session refs it printed (one per codec). */
async function stageInChild(
  kind: 'fs' | 's3',
  where: string,
  codecs: string[],
  mode: 'complete' | 'crash',
): Promise<StagingSessionRef[]> {
  const target = s3Target();
  const { stdout } = await run(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', child, kind, where, codecs.join(','), mode],
    {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: {
        ...process.env,
        S3_TEST_ENDPOINT: target.endpoint,
        S3_TEST_REGION: target.region,
        S3_TEST_BUCKET: target.bucket,
        S3_TEST_LOCAL: target.local ? '1' : '0',
      },
      timeout: 110_000,
    },
  );
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

async function readAll(staging: ObjectStoreStagingProvider, ref: StagingSessionRef, chunk = 64): Promise<Row[]> {
  const session = await staging.openSession(ref);
  const rows: Row[] = [];
  for await (const b of session.reader().iterBatches(chunk)) rows.push(...b);
  return rows;
}

const targets: Array<[string, () => { kind: 'fs' | 's3'; where: string; store: ObjectStore; prefix: string }]> = [
  [
    'FileSystemObjectStore',
    () => {
      const root = mkdtempSync(join(tempRoot, 'fs-'));
      return { kind: 'fs', where: root, store: new FileSystemObjectStore({ root }), prefix: 'ingestion' };
    },
  ],
  [
    'S3ObjectStore',
    () => {
      const prefix = uniquePrefix('xproc').slice(0, -1);
      return {
        kind: 's3',
        where: prefix,
        store: new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() }),
        prefix,
      };
    },
  ],
];

for (const [name, target] of targets) {
  describe(`a session staged in another process (${name})`, () => {
    it(
      'is read here from its ref alone, for every codec',
      async () => {
        const t = target();
        const codecs = ['ndjson', 'ndjson.gz', 'arrow'];
        const refs = await stageInChild(t.kind, t.where, codecs, 'complete');
        expect(refs).toHaveLength(3);
        for (const [i, codec] of codecs.entries()) {
          const ref = refs[i];
          expect(ref).toMatchObject({
            provider: 'object-store',
            workspaceId: 'ws',
            endpointId: 'child',
            unitId: 'items',
            codec,
          });
          const staging = new ObjectStoreStagingProvider({
            store: t.store,
            prefix: t.prefix,
            codec: codec === 'arrow' ? arrowCodec() : (codec as 'ndjson'),
          });
          const rows = await readAll(staging, ref);
          expect(rows).toEqual([...childRows(0), ...childRows(1), ...childRows(2)]);
          expect(typeof rows[0].id).toBe('bigint');
          expect(rows[0].at).toBeInstanceOf(Date);
          const session = await staging.openSession(ref);
          expect(await session.describe()).toMatchObject({ sealed: true, landed: false, rows: 600 });
          await session.markLanded();
          expect((await (await staging.openSession(ref)).describe()).landed).toBe(true);
        }
      },
      CHILD_TEST_TIMEOUT,
    );

    it(
      'resumes a run whose worker died mid-export: finished slices kept, the open one rewritten',
      async () => {
        const t = target();
        const [ref] = await stageInChild(t.kind, t.where, ['ndjson'], 'crash');
        const staging = new ObjectStoreStagingProvider({ store: t.store, prefix: t.prefix });
        // Same run id → same place: the manifest knows slice 0 only.
        const session = await staging.allocateSession(
          testContext({ workspaceId: 'ws', endpointId: 'child', unitId: 'items', runId: ref.runId }),
        );
        expect(session.id).toBe(ref.sessionId);
        expect((await session.describe()).slices.map((s) => s.index)).toEqual([0]);
        const w = session.writer({ slice: 1 });
        await w.writeBatch(childRows(1));
        await w.close();
        await session.seal();
        expect(await readAll(staging, ref)).toEqual([...childRows(0), ...childRows(1)]);
      },
      CHILD_TEST_TIMEOUT,
    );
  });
}
