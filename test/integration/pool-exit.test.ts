/**
 * A script that builds a MySqlSource / PostgresSource from a connection string, uses it, and forgets `close()` exits
 * once the pool is idle (ADR 0017): pg's `allowExitOnIdle`, and for mysql2 idle sockets unref'd by the pool the
 * endpoint built. Each script runs in a child process; a pool that keeps the process alive fails the timeout.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mysqlUrl } from '../helpers/mysql.js';
import { databaseUrl } from '../helpers/pg.js';

const dir = mkdtempSync(join(tmpdir(), 'nucleus-pool-exit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const src = (p: string) => JSON.stringify(resolve(__dirname, '../../src', p));

function runScript(
  name: string,
  body: string,
  timeoutMs: number,
): Promise<{ code: number | null; ms: number; out: string; err: string }> {
  const file = join(dir, name);
  writeFileSync(file, body);
  const started = Date.now();
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', file], { cwd: resolve(__dirname, '../..') });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      ok({ code: null, ms: Date.now() - started, out, err });
    }, timeoutMs);
    p.on('error', fail);
    p.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code, ms: Date.now() - started, out, err });
    });
  });
}

const script = (subpath: string, cls: string, url: string) => `
const { ${cls} } = await import(${src(subpath)});
const { testContext } = await import(${src('testing/context.ts')});
const source = new ${cls}({ connectionString: ${JSON.stringify(url)} });
const units = await source.collectMetadata(testContext());
console.log(JSON.stringify({ ok: true, units: units.length }));
// no source.close(): the process must still exit
`;

describe('pools an endpoint built itself let the process exit once idle', () => {
  for (const [name, subpath, cls, url] of [
    ['mysql', 'mysql/index.ts', 'MySqlSource', mysqlUrl()],
    ['postgres', 'postgres/index.ts', 'PostgresSource', databaseUrl()],
  ] as const) {
    it(`${cls} from a connection string, without close(): the script exits`, async () => {
      const r = await runScript(`${name}.mts`, script(subpath, cls, url), 8_000);
      expect(r.err).toBe('');
      expect(JSON.parse(r.out.trim().split('\n').at(-1)!)).toMatchObject({ ok: true });
      expect(r.code, `${cls}: still running after ${r.ms} ms`).toBe(0);
    }, 30_000);
  }
});

describe('Symbol.asyncDispose on the endpoints that own a pool', () => {
  it('PostgresSource, PostgresSink, MySqlSource and MySqlSink end their own pool at the end of an `await using` scope', async () => {
    const { PostgresSink, PostgresSource } = await import('../../src/postgres/index.js');
    const { MySqlSink, MySqlSource } = await import('../../src/mysql/index.js');
    const { testContext } = await import('../../src/testing/context.js');
    for (const make of [
      () => new PostgresSource({ connectionString: databaseUrl() }),
      () => new MySqlSource({ connectionString: mysqlUrl() }),
    ]) {
      const source = make();
      {
        await using scoped = source;
        await scoped.collectMetadata(testContext());
      }
      // disposed: the pool it built is ended, so the source refuses further work
      await expect(source.collectMetadata(testContext())).rejects.toThrow();
    }
    for (const make of [
      () => new PostgresSink({ connectionString: databaseUrl() }),
      () => new MySqlSink({ connectionString: mysqlUrl() }),
    ]) {
      const sink = make();
      {
        await using _scoped = sink;
      }
      const err = await sink
        .import(
          { unitId: 'x', reader: { async *iterBatches() {} }, slices: [], handles: [], disposition: 'append' },
          testContext(),
        )
        .catch((e) => e);
      expect(String(err?.message)).toMatch(/already closed/);
    }
  }, 30_000);
});
