/**
 * `npm run bench -- scale [--rows N]` (default 20,000 rows per unit): the same 12 units (PostgreSQL tables →
 * S3 staging on a local s3rver → PostgreSQL, 6 append + 6 merge) run through a BullMQ queue by K = 1, 2 and 4
 * worker processes (test/integration/workers/bullmq-worker.ts). Reports rows/s per K as a ratio to K = 1, the CPU
 * seconds the PostgreSQL server processes used (from /proc/<pid>/stat, all `postgres` processes), and the workers'
 * CPU (their /proc stat before exit). Writes docs/performance.md (section `scale`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import pg from 'pg';
import { IngestionProducer } from '../src/bullmq/index.js';
import { startLocalS3 } from '../test/helpers/s3-server.js';
import { writePerformanceSection } from './_report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = join(ROOT, 'test/integration/workers/bullmq-worker.ts');
const URL_ = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
const REDIS = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const TICK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of every process whose command name is `name`. */
function cpuOf(name: string): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== name) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    } catch {
      // gone
    }
  }
  return ticks / TICK;
}

function cpuOfPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

interface Proc {
  child: ChildProcess;
  lines: string[];
}

function start(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', WORKER], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const p: Proc = { child, lines: [] };
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      p.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return p;
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--rows');
  const rowsPerUnit = i >= 0 ? Number(args[i + 1]) : 20_000;
  const load0 = loadavg();
  const schema = `bench_scale_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: URL_, max: 2 });
  const s3 = await startLocalS3({ buckets: ['bench'] });
  const units = Array.from({ length: 12 }, (_, k) => {
    const n = String(k + 1).padStart(2, '0');
    return { unitId: `${schema}.src_${n}`, target: `${schema}.dst_${n}`, merge: (k + 1) % 2 === 0 };
  });
  const results: Array<{ k: number; seconds: number; rowsPerSec: number; pgCpu: number; workerCpu: number }> = [];
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    for (const u of units) {
      await admin.query(
        `CREATE TABLE ${u.unitId} (id bigint PRIMARY KEY, payload text, amount numeric(12,2), at timestamptz)`,
      );
      await admin.query(
        `INSERT INTO ${u.unitId} SELECT g, repeat(md5(g::text), 3), (g * 1.25)::numeric(12,2), timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, $1) g`,
        [rowsPerUnit],
      );
    }
    await admin.query('ANALYZE');
    const totalRows = rowsPerUnit * units.length;
    for (const k of [1, 2, 4]) {
      // Fresh targets, checkpoints and ledger for each K.
      for (const u of units) {
        await admin.query(`DROP TABLE IF EXISTS ${u.target}`);
        await admin.query(
          `CREATE TABLE ${u.target} (id bigint${u.merge ? ' PRIMARY KEY' : ''}, payload text, amount numeric(12,2), at timestamptz)`,
        );
      }
      await admin.query(`DROP TABLE IF EXISTS ${schema}.kv_entries, ${schema}._ledger`);
      const q = {
        queue: `scale-${k}-${randomBytes(4).toString('hex')}`,
        prefix: `bench-${randomBytes(4).toString('hex')}`,
      };
      const env = {
        QUIET: '1',
        REDIS_URL: REDIS.href,
        QUEUE: q.queue,
        QUEUE_PREFIX: q.prefix,
        DATABASE_URL: URL_,
        PG_SCHEMA: schema,
        UNITS_JSON: JSON.stringify(Object.fromEntries(units.map((u) => [u.unitId, u.target]))),
        S3_ENDPOINT: s3.endpoint,
        S3_REGION: s3.region,
        S3_BUCKET: 'bench',
        S3_ACCESS_KEY: s3.accessKeyId,
        S3_SECRET_KEY: s3.secretAccessKey,
        STAGING_PREFIX: `scale/${k}`,
        LOCK_MS: '30000',
        SLICE_ROWS: '10000',
        CHUNK_ROWS: '5000',
      };
      const workers = Array.from({ length: k }, (_, n) => start({ ...env, WORKER_ID: `k${k}-w${n}` }));
      await until(() => workers.every((w) => w.lines.some((l) => l.startsWith('@@ready'))), 120_000, 'workers ready');
      const connection = { host: REDIS.hostname, port: Number(REDIS.port || 6379), maxRetriesPerRequest: null };
      const queue = new Queue(q.queue, { connection, prefix: q.prefix });
      const producer = new IngestionProducer({ queue });
      const done = () => workers.flatMap((w) => w.lines.filter((l) => l.startsWith('@@completed'))).length;
      const failed = () => workers.flatMap((w) => w.lines.filter((l) => l.startsWith('@@failed')));
      const pg0 = cpuOf('postgres');
      const w0 = workers.map((w) => cpuOfPid(w.child.pid!));
      const t0 = performance.now();
      for (const u of units) {
        await producer.enqueueUnit({
          endpointId: 'pg-src',
          unitId: u.unitId,
          sinkId: 'pg-dst',
          mode: 'full',
          ...(u.merge ? { disposition: 'merge' as const, primaryKey: ['id'] } : {}),
        });
      }
      await until(
        () => {
          if (failed().length) throw new Error(`job failed: ${failed()[0]}`);
          return done() === units.length;
        },
        1_800_000,
        'all units',
      );
      const seconds = (performance.now() - t0) / 1000;
      const pgCpu = cpuOf('postgres') - pg0;
      const workerCpu = workers.reduce((n, w, j) => n + cpuOfPid(w.child.pid!) - w0[j], 0);
      const check = await admin.query(
        `SELECT ${units.map((u) => `(SELECT count(*) FROM ${u.target})`).join(' + ')} AS n`,
      );
      if (Number(check.rows[0].n) !== totalRows)
        throw new Error(`K=${k}: ${check.rows[0].n} rows, expected ${totalRows}`);
      results.push({ k, seconds, rowsPerSec: totalRows / seconds, pgCpu, workerCpu });
      console.log(
        `K=${k}: ${seconds.toFixed(1)} s, ${Math.round(totalRows / seconds)} rows/s, postgres CPU ${pgCpu.toFixed(1)} s, workers CPU ${workerCpu.toFixed(1)} s`,
      );
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(
        workers.map((w) => new Promise((r) => (w.child.exitCode !== null ? r(null) : w.child.once('close', r)))),
      );
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end();
    await s3.stop();
  }
  const load1 = loadavg();
  const base = results[0];
  const table = [
    '| K workers | seconds | rows/s | ratio to K=1 | PostgreSQL CPU s | CPU s per 100k rows (PostgreSQL) | workers CPU s |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.k} | ${r.seconds.toFixed(1)} | ${Math.round(r.rowsPerSec)} | ${(r.rowsPerSec / base.rowsPerSec).toFixed(2)} | ${r.pgCpu.toFixed(1)} | ${((r.pgCpu / (rowsPerUnit * 12)) * 100_000).toFixed(2)} | ${r.workerCpu.toFixed(1)} |`,
    ),
  ].join('\n');
  const md = `## Scale-out on BullMQ (\`npm run bench -- scale\`)

12 units × ${rowsPerUnit.toLocaleString('en')} rows (6 append, 6 merge), PostgreSQL → S3 staging (local s3rver) → PostgreSQL,
run by K worker processes on one BullMQ queue; ${cpus().length} cores; load average ${load0.map((x) => x.toFixed(2)).join(' / ')}
before, ${load1.map((x) => x.toFixed(2)).join(' / ')} after. Measured ${new Date().toISOString().slice(0, 10)}.

${table}
`;
  console.log(md);
  writePerformanceSection('scale', md);
}
