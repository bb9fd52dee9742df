/**
 * Start a local S3 server (s3rver) on loopback in a child process — shared by the vitest global setup and the
 * benchmarks. The child gets `--openssl-legacy-provider` (s3rver needs DES for continuation tokens) and exits when
 * its parent does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LocalS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  directory: string;
  stop(): Promise<void>;
}

const childScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'setup', 's3rver-process.cjs');

export async function startLocalS3(opts: { buckets: string[]; directory?: string }): Promise<LocalS3> {
  const ownDir = opts.directory === undefined;
  const directory = opts.directory ?? mkdtempSync(join(tmpdir(), 'nucleus-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', childScript], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '', S3RVER_CONFIG: JSON.stringify({ directory, buckets: opts.buckets }) },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20_000);
    child.once('message', (msg: { port?: number; error?: string }) => {
      clearTimeout(timer);
      if (msg.port) resolve(msg.port);
      else reject(new Error(`s3rver failed to start: ${msg.error}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code} before it was ready`));
    });
    child.once('error', reject);
  }).catch((err) => {
    child.kill();
    if (ownDir) rmSync(directory, { recursive: true, force: true });
    throw err;
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) rmSync(directory, { recursive: true, force: true });
    },
  };
}
