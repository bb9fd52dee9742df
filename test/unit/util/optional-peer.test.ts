/** A missing optional peer is `dependency_missing` (not retryable), naming the package and its install command. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOptionalPeer } from '../../../src/util/optional-peer.js';

const MISSING = 'nucleus-peer-that-is-not-installed';

describe('loadOptionalPeer', () => {
  it('maps a package that is not installed (ESM import and CommonJS require) to dependency_missing', async () => {
    const loaders = [() => import(MISSING), async () => createRequire(import.meta.url)(MISSING)];
    for (const loader of loaders) {
      const err = await loadOptionalPeer(MISSING, loader).catch((e) => e);
      expect(err).toMatchObject({
        code: 'dependency_missing',
        retryable: false,
        message: expect.stringContaining(`run \`npm install ${MISSING}\``),
        details: { package: MISSING, install: `npm install ${MISSING}` },
      });
    }
  });

  it('passes the module through, and rethrows other failures and other missing packages unchanged', async () => {
    await expect(loadOptionalPeer('node:path', () => import('node:path'))).resolves.toHaveProperty('join');
    const other = await loadOptionalPeer('hyparquet-writer', () => import(MISSING)).catch((e) => e);
    expect(other.code).toBe('ERR_MODULE_NOT_FOUND');
    const boom = new Error('boom');
    await expect(loadOptionalPeer(MISSING, () => Promise.reject(boom))).rejects.toBe(boom);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'nucleus-peer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Node's resolver hook that reports `hyparquet-writer` as not installed, as Node itself does. */
const HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier === 'hyparquet-writer' || specifier.startsWith('hyparquet-writer/')) {
    const err = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}
`;
const SCRIPT = `
import { register } from 'node:module';
register(${JSON.stringify(`file://${join(dir, 'hooks.mjs')}`)});
const { MemoryObjectStore, MemoryStagingProvider, MemoryKvStore, runUnit } = await import(${JSON.stringify(resolve(__dirname, '../../../src/index.ts'))});
const { ObjectStoreSink } = await import(${JSON.stringify(resolve(__dirname, '../../../src/sinks/object-store-sink.ts'))});
const { MemorySource } = await import(${JSON.stringify(resolve(__dirname, '../../../src/testing/index.ts'))});
const source = new MemorySource({ units: { users: { rows: [{ id: 1 }] } } });
const sink = new ObjectStoreSink({ store: new MemoryObjectStore(), format: 'parquet' });
let attempts = 0;
const counted = { ...sink, descriptor: sink.descriptor, import: (r, c) => (attempts++, sink.import(r, c)) };
try {
  await runUnit({ source, sink: counted, staging: new MemoryStagingProvider(), kv: new MemoryKvStore(),
    unit: { endpointId: 'e', unitId: 'users' }, mode: 'full', disposition: 'append' });
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ code: e.code, retryable: e.retryable, message: e.message, attempts }));
}
`;

describe("ObjectStoreSink format 'parquet' without hyparquet-writer", () => {
  it('fails the run once with dependency_missing naming `npm install hyparquet-writer`', async () => {
    writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
    writeFileSync(join(dir, 'run.mts'), SCRIPT);
    const out = await new Promise<string>((ok, fail) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(dir, 'run.mts')], {
        cwd: resolve(__dirname, '../../..'),
      });
      let text = '';
      let err = '';
      p.stdout.on('data', (d) => (text += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => (code === 0 ? ok(text) : fail(new Error(`exited ${code}: ${err}`))));
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(result).toMatchObject({ code: 'dependency_missing', retryable: false, attempts: 1 });
    expect(result.message).toContain('`npm install hyparquet-writer`');
  });
});
