/** What a run left in the test bucket, read straight from the S3 server (never through a fault proxy). */
import { createHash } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../src/s3/index.js';
import { createTestS3Client, testBucket } from './s3.js';

/** sha256 of every staged slice object under `prefix` (`<name relative to prefix>` → hex), manifests and markers left out. */
export async function sliceHashes(prefix: string): Promise<Map<string, string>> {
  const client = createTestS3Client();
  try {
    const store = new S3ObjectStore({ client, bucket: testBucket() });
    const out = new Map<string, string>();
    for await (const info of store.list(`${prefix}/`)) {
      const name = info.key.slice(prefix.length + 1);
      if (!/\/\d{6}\.[a-z.]+$/.test(name)) continue;
      const hash = createHash('sha256');
      for await (const c of await store.get(info.key)) hash.update(c);
      out.set(name, hash.digest('hex'));
    }
    return out;
  } finally {
    client.destroy();
  }
}

/** Open (incomplete) multipart uploads under `prefix`, as `"<key> <uploadId>"`, from ListMultipartUploads. */
export async function openUploads(prefix: string): Promise<string[]> {
  const client = createTestS3Client();
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: testBucket(), Prefix: `${prefix}/` }));
    return (listed.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
  } finally {
    client.destroy();
  }
}
