/** S3 helpers for tests: a client for the target the global setup provides, its bucket, and unique prefixes. */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { newRunId } from '../../src/index.js';

/** The S3 target of this test run (local s3rver or `S3_ENDPOINT`). */
export function s3Target() {
  return inject('s3');
}

/** The bucket tests write into. */
export function testBucket(): string {
  return inject('s3').bucket;
}

/**
 * A client for the test target. Against the local s3rver it uses the `S3RVER` keys and sends checksums only when
 * required (s3rver would store streamed bodies with their chunk framing otherwise); against `S3_ENDPOINT` it is a
 * default client with credentials from the environment.
 */
export function createTestS3Client(overrides: Partial<S3ClientConfig> = {}): S3Client {
  const target = inject('s3');
  const base: S3ClientConfig = {
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
  };
  if (target.local) {
    Object.assign(base, {
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } satisfies S3ClientConfig);
  }
  return new S3Client({ ...base, ...overrides });
}

/** A key prefix no other test uses, ending in `/`. */
export function uniquePrefix(label = 'test'): string {
  return `${label}/${newRunId()}/`;
}
