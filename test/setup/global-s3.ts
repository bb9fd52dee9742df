/**
 * Vitest global setup for S3. Without `S3_ENDPOINT` it starts s3rver on 127.0.0.1 (random port, temp dir) and
 * creates the test bucket; with `S3_ENDPOINT` (+ `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
 * `S3_BUCKET`, `AWS_REGION`, `S3_FORCE_PATH_STYLE=0`) the same tests run against real S3 or MinIO.
 * Either way the bucket is probed before any test runs: a server that cannot be reached fails the run.
 * Tests read the target with `inject('s3')` (see test/helpers/s3.ts).
 */
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { TestProject } from 'vitest/node';
import { startLocalS3 } from '../helpers/s3-server.js';

/** Where the S3 tests go. Credentials of a real endpoint stay in the environment, never in this object. */
export interface S3TestTarget {
  endpoint: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  /** True for the s3rver started here (credentials `S3RVER`/`S3RVER`). */
  local: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3: S3TestTarget;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const endpoint = process.env.S3_ENDPOINT;
  if (endpoint) {
    const missing = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].filter((v) => !process.env[v]);
    if (missing.length) throw new Error(`S3_ENDPOINT is set but ${missing.join(' and ')} is not`);
    const target: S3TestTarget = {
      endpoint,
      region: process.env.AWS_REGION ?? 'us-east-1',
      bucket: process.env.S3_BUCKET ?? 'nucleus-ingestion-test',
      forcePathStyle: process.env.S3_FORCE_PATH_STYLE !== '0',
      local: false,
    };
    const client = new S3Client({ endpoint, region: target.region, forcePathStyle: target.forcePathStyle });
    try {
      await client.send(new CreateBucketCommand({ Bucket: target.bucket })).catch((err: { name?: string }) => {
        if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
      });
      await probe(client, target);
    } finally {
      client.destroy();
    }
    project.provide('s3', target);
    return async () => {};
  }

  const server = await startLocalS3({ buckets: ['nucleus-test'] });
  const target: S3TestTarget = {
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'nucleus-test',
    forcePathStyle: true,
    local: true,
  };
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await probe(client, target);
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    client.destroy();
  }
  project.provide('s3', target);
  return () => server.stop();
}

async function probe(client: S3Client, target: S3TestTarget): Promise<void> {
  try {
    await client.send(new ListObjectsV2Command({ Bucket: target.bucket, MaxKeys: 1 }));
  } catch (err) {
    throw new Error(
      `S3 test setup: cannot list bucket ${target.bucket} at ${target.endpoint}: ${(err as Error).name}: ${(err as Error).message}`,
    );
  }
}
