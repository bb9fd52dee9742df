/** The PostgreSQL transcoders of the Arrow codec without `apache-arrow` installed: `dependency_missing`, not a crash. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'nucleus-arrow-peer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier === 'apache-arrow' || specifier.startsWith('apache-arrow/')) {
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
const { exportTranscoder, importTranscoder } = await import(${JSON.stringify(resolve(__dirname, '../../src/postgres/transcoders.ts'))});
const out = [];
for (const load of [exportTranscoder('arrow'), importTranscoder('arrow')]) {
  try { await load(); out.push({ ok: true }); } catch (e) { out.push({ code: e.code, retryable: e.retryable, message: e.message }); }
}
// the NDJSON transcoders do not need apache-arrow
await exportTranscoder('ndjson')();
console.log(JSON.stringify(out));
`;

describe('PostgreSQL Arrow transcoders without apache-arrow', () => {
  it('fail with dependency_missing naming `npm install apache-arrow`', async () => {
    writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
    writeFileSync(join(dir, 'run.mts'), SCRIPT);
    const out = await new Promise<string>((ok, fail) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(dir, 'run.mts')], {
        cwd: resolve(__dirname, '../..'),
      });
      let text = '';
      let err = '';
      p.stdout.on('data', (d) => (text += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => (code === 0 ? ok(text) : fail(new Error(`exited ${code}: ${err}`))));
    });
    const results = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r).toMatchObject({ code: 'dependency_missing', retryable: false });
      expect(r.message).toContain('`npm install apache-arrow`');
    }
  }, 60_000);
});
