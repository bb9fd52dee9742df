/** `@nucleus/ingestion/nats` loads without its optional peers; using the source without them is `dependency_missing`. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'nucleus-nats-peer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Node's resolver hook that reports `@nats-io/*` as not installed, as Node itself does. */
const HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@nats-io/')) {
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
const { JetStreamSource } = await import(${JSON.stringify(resolve(__dirname, '../../../src/nats/index.ts'))});
const { testContext } = await import(${JSON.stringify(resolve(__dirname, '../../../src/testing/index.ts'))});
const source = new JetStreamSource({ servers: '127.0.0.1:4222', stream: 'S', units: { u: {} } });
try {
  for await (const _ of source.read({ unitId: 'u', mode: 'incremental', checkpoint: null }, testContext())) {}
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ code: e.code, retryable: e.retryable, message: e.message }));
}
`;

describe('JetStreamSource without @nats-io/*', () => {
  it('imports, and fails its first read with dependency_missing naming the install command', async () => {
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
    expect(result).toMatchObject({ code: 'dependency_missing', retryable: false });
    expect(result.message).toMatch(/npm install @nats-io\/(transport-node|jetstream)/);
  });
});
