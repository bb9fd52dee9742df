/**
 * `npm run bench -- mysql [--rows N]` (default 1,000,000): MariaDB → staging → MariaDB, against the server's own
 * `SELECT … INTO OUTFILE` + `LOAD DATA INFILE` on the same data.
 *
 * A table (id BIGINT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2), created_at DATETIME(6), tags JSON) is
 * filled from the sequence engine. Measured in one run, on the same data and server:
 * - end to end, three paths: `runUnit` MySqlSource → filesystem staging → MySqlSink into a fresh target, with
 *   `mysql-tsv` staging (LOAD DATA text staged by the source, streamed to LOAD DATA unchanged), and with NDJSON
 *   staging into `loadMethod: 'load-data'` (LOAD DATA LOCAL INFILE encoded from rows) and `loadMethod: 'insert'`
 *   (multi-row INSERTs sized by bytes); each in its own child process (its peak RSS is its own);
 * - baseline, before and after ours (ratios against the mean): `SELECT … INTO OUTFILE` then `LOAD DATA INFILE` into
 *   a fresh target (server-side files: no client, no network, no staging, no checksums) — the fastest copy the
 *   server itself offers.
 * - MariaDB → PostgreSQL, when `pgloader` is installed (said so when not): pgloader (`workers = 2`, the tables it
 *   creates keep the primary key) against `runUnit` MySqlSource → NDJSON staging → PostgresSink into a target with the
 *   same primary key; both targets checked by count, sum(id) and sum(amount) against the source.
 * Writes the figures to docs/performance.md (section `mysql`) unless `--no-write`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { writePerformanceSection } from './_report.js';

const DEFAULT_URL = 'mysql://root@127.0.0.1:3306/test';
const PG_URL = 'postgres://root@127.0.0.1:5432/test';
const here = fileURLToPath(import.meta.url);

/** Staging codec of a bench path: NDJSON (rows) or LOAD DATA text (`mysql-tsv`, the pass-through). */
type StagingCodec = 'ndjson' | 'mysql-tsv';

interface ChildResult {
  method: string;
  codec: StagingCodec;
  rows: number;
  ms: number;
  peakRssMb: number;
  cpuSec: number;
  slices: number;
}

const DDL = (t: string) =>
  `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2), created_at DATETIME(6), tags JSON) ENGINE=InnoDB`;

function dbUrl(database: string): string {
  const u = new URL(process.env.MYSQL_URL || DEFAULT_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

/** MariaDB → PostgreSQL: `runUnit` MySqlSource → NDJSON staging → PostgresSink into `pgSchema.dst`. */
async function childToPg(database: string, pgSchema: string, stagingRoot: string): Promise<void> {
  const { MySqlSource } = await import('../src/mysql/index.js');
  const { PostgresSink } = await import('../src/postgres/index.js');
  const { runUnit, ObjectStoreStagingProvider, MemoryKvStore } = await import('../src/index.js');
  const { FileSystemObjectStore } = await import('../src/fs/index.js');
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL || PG_URL, max: 4 });
  const unitId = `${database}.src`;
  const source = new MySqlSource({ connectionString: dbUrl(database), maxConnections: 3 });
  const sink = new PostgresSink({ pool, tables: { [unitId]: `${pgSchema}.dst` }, ledgerTable: `${pgSchema}.ledger` });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runUnit({
    source,
    sink,
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: stagingRoot }) }),
    kv: new MemoryKvStore(),
    unit: { vendor: 'mysql', endpointId: 'bench', unitId, sinkId: 'pg' },
    mode: 'full',
    disposition: 'append',
    policy: {
      chunkSize: 10_000,
      sliceMaxRows: 250_000,
      exportConcurrency: 2,
      overlap: process.env.BENCH_OVERLAP !== '0',
    },
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all([source.close(), sink.close()]);
  await pool.end();
  const out: ChildResult = {
    method: 'postgres',
    codec: 'ndjson',
    rows: r.stats.rowsImported,
    ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    cpuSec: (cpu.user + cpu.system) / 1e6,
    slices: r.stats.slices,
  };
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

/**
 * MariaDB → PostgreSQL against pgloader, when installed: the markdown lines of the comparison, or why it was not
 * measured.
 */
async function toPostgres(database: string, rows: number, tmp: string): Promise<string[]> {
  try {
    execFileSync('bash', ['-c', 'command -v pgloader'], { stdio: 'ignore' });
  } catch {
    console.log('pgloader: not installed (apt-get install pgloader), MariaDB → PostgreSQL skipped');
    return [
      '',
      'MariaDB → PostgreSQL: pgloader is not installed on this machine (`apt-get install pgloader`); not measured.',
    ];
  }
  const pg = (await import('pg')).default;
  const pgUrl = process.env.DATABASE_URL || PG_URL;
  const admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
  const pgSchema = `${database}_pg`;
  const loaderSchema = `${database}_pgloader`;
  const my = new URL(process.env.MYSQL_URL || DEFAULT_URL);
  try {
    await admin.query(`CREATE SCHEMA "${pgSchema}"`);
    await admin.query(
      `CREATE TABLE "${pgSchema}".dst (id bigint PRIMARY KEY, name varchar(64), amount numeric(12,2), created_at timestamp(6), tags jsonb)`,
    );
    const cmd = join(tmp, 'load.pgloader');
    writeFileSync(
      cmd,
      `LOAD DATABASE FROM mysql://${my.username || 'root'}@${my.hostname}:${my.port || 3306}/${database}
       INTO ${pgUrl}
       WITH include drop, create tables, create indexes, workers = 2, concurrency = 1
       INCLUDING ONLY TABLE NAMES MATCHING 'src'
       ALTER SCHEMA '${database}' RENAME TO '${loaderSchema}';\n`,
    );
    console.log('MariaDB → PostgreSQL: pgloader (workers = 2)');
    const l0 = performance.now();
    execFileSync('pgloader', ['--quiet', cmd], { stdio: ['ignore', 'ignore', 'inherit'], cwd: tmp });
    const loaderMs = performance.now() - l0;
    console.log('MariaDB → PostgreSQL: runUnit, NDJSON staging, PostgresSink');
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', here, '--child-pg', database, pgSchema, join(tmp, 'staging-pg')],
      {
        encoding: 'utf8',
        env: process.env,
        maxBuffer: 64 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const ours = JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
    const check = async (table: string) => {
      const { rows: r } = await admin.query(
        `SELECT count(*)::bigint AS n, sum(id)::text AS ids, sum(amount)::text AS amounts FROM ${table}`,
      );
      return `${r[0].n}/${r[0].ids}/${Number(r[0].amounts).toFixed(2)}`;
    };
    const want = `${rows}/${(BigInt(rows) * BigInt(rows + 1)) / 2n}`;
    const ok = async (table: string) =>
      (await check(table)).startsWith(`${want}/`)
        ? 'count and sum(id) match'
        : `**${await check(table)}, expected ${want}**`;
    const loaderOk = await ok(`"${loaderSchema}".src`);
    const oursOk = await ok(`"${pgSchema}".dst`);
    const { rows: pk } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = '"${loaderSchema}".src'::regclass AND contype = 'p'`,
    );
    return [
      '',
      `MariaDB → PostgreSQL (${fmt(rows)} rows, same run): pgloader \`workers = 2\` ${secs(loaderMs)} s (target ${pk[0].n ? 'with' : '**without**'} its primary key, ${loaderOk}); \`runUnit\` MySqlSource → NDJSON staging → PostgresSink (target with the same primary key) ${secs(ours.ms)} s, ${ours.cpuSec.toFixed(1)} Node CPU s, peak RSS ${ours.peakRssMb.toFixed(0)} MiB (${oursOk}): **${(loaderMs / ours.ms).toFixed(2)}× pgloader**.`,
    ];
  } catch (err) {
    console.warn(`MariaDB → PostgreSQL comparison failed: ${String(err)}`);
    return ['', `MariaDB → PostgreSQL: the pgloader comparison failed in this run (${String(err).slice(0, 200)}).`];
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).catch(() => {});
    await admin.query(`DROP SCHEMA IF EXISTS "${loaderSchema}" CASCADE`).catch(() => {});
    await admin.end();
  }
}

async function child(
  method: 'load-data' | 'insert',
  codec: StagingCodec,
  database: string,
  target: string,
  stagingRoot: string,
): Promise<void> {
  const { MySqlKvStore, MySqlSink, MySqlSource, mySqlLoadDataCodec } = await import('../src/mysql/index.js');
  const { runUnit, ObjectStoreStagingProvider } = await import('../src/index.js');
  const { FileSystemObjectStore } = await import('../src/fs/index.js');
  const { Kysely, MysqlDialect } = await import('kysely');
  const core = await import('mysql2');
  const url = dbUrl(database);
  const db = new Kysely<any>({
    dialect: new MysqlDialect({ pool: core.default.createPool({ uri: url, connectionLimit: 2 }) }),
  });
  const kv = new MySqlKvStore({ db });
  await kv.migrate();
  const unitId = `${database}.src`;
  const source = new MySqlSource({ connectionString: url, maxConnections: 3 });
  const sink = new MySqlSink({
    connectionString: url,
    maxConnections: 3,
    loadMethod: method,
    tables: { [unitId]: target },
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runUnit({
    source,
    sink,
    staging: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root: stagingRoot }),
      codec: codec === 'mysql-tsv' ? mySqlLoadDataCodec() : 'ndjson',
    }),
    kv,
    unit: { vendor: 'mysql', endpointId: 'bench', unitId, sinkId: target },
    mode: 'full',
    disposition: 'append',
    policy: {
      chunkSize: 10_000,
      sliceMaxRows: 250_000,
      exportConcurrency: 2,
      overlap: process.env.BENCH_OVERLAP !== '0',
    },
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all([source.close(), sink.close(), db.destroy()]);
  const out: ChildResult = {
    method,
    codec,
    rows: r.stats.rowsImported,
    ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    cpuSec: (cpu.user + cpu.system) / 1e6,
    slices: r.stats.slices,
  };
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

function runChild(
  method: string,
  codec: StagingCodec,
  database: string,
  target: string,
  stagingRoot: string,
): ChildResult {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', here, '--child', method, codec, database, target, stagingRoot],
    {
      encoding: 'utf8',
      env: process.env,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
}

/** `SELECT … INTO OUTFILE` then `LOAD DATA INFILE` into a fresh `target`: the server copying by itself. */
async function baseline(
  admin: mysql.Connection,
  outfile: string,
  target: string,
): Promise<{ out: number; load: number; total: number }> {
  console.log(`baseline (${target}): SELECT … INTO OUTFILE + LOAD DATA INFILE`);
  rmSync(outfile, { force: true });
  await admin.query(DDL(target));
  const b0 = performance.now();
  await admin.query(`SELECT id, name, amount, created_at, tags INTO OUTFILE '${outfile}' FROM src`);
  const b1 = performance.now();
  await admin.query(`LOAD DATA INFILE '${outfile}' INTO TABLE ${target}`);
  const b2 = performance.now();
  return { out: b1 - b0, load: b2 - b1, total: b2 - b0 };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const secs = (ms: number) => (ms / 1000).toFixed(2);

/** Entry point of `npm run bench -- mysql [--rows N]`. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--rows');
  const rows = i >= 0 ? Number(args[i + 1]) : Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`Expected \`--rows\` to be a positive integer, got ${args[i + 1]}`);
  const database = `bench_my_${randomBytes(4).toString('hex')}`;
  const tmp = mkdtempSync(join(tmpdir(), 'bench-mysql-'));
  chmodSync(tmp, 0o777); // the server (user mysql) writes the OUTFILE here
  const outfile = join(tmp, 'src.tsv');
  const admin = await mysql.createConnection({
    uri: process.env.MYSQL_URL || DEFAULT_URL,
    infileStreamFactory: undefined,
  });
  const load = { before: loadavg()[0], after: 0 };
  try {
    console.log(`mysql bench: ${fmt(rows)} rows, database ${database}, load average ${load.before.toFixed(2)}`);
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.query(`USE \`${database}\``);
    await admin.query(DDL('src'));
    await admin.query(
      `INSERT INTO src SELECT seq, CONCAT('name-', seq), (seq % 1000000) / 100, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1001 MICROSECOND,
         JSON_OBJECT('k', seq % 10, 'tags', JSON_ARRAY('a', seq % 7, true)) FROM seq_1_to_${rows}`,
    );
    await admin.query('ANALYZE TABLE src');
    // the server's own copy, before and after ours (the machine's load moves): ratios use the mean of the two
    const base1 = await baseline(admin, outfile, 'dst_baseline_before');
    const results: ChildResult[] = [];
    const paths = [
      ['load-data', 'mysql-tsv'],
      ['load-data', 'ndjson'],
      ['insert', 'ndjson'],
    ] as const;
    for (const [method, codec] of paths) {
      const target = `dst_${method.replace('-', '_')}_${codec.replace('-', '_')}`;
      const staging = join(tmp, `staging-${method}-${codec}`);
      console.log(`ours: runUnit MySqlSource → fs staging (${codec}) → MySqlSink (${method})`);
      const r = runChild(method, codec, database, target, staging);
      const [[c]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${target}\``)) as any;
      if (Number(c.n) !== rows) throw new Error(`${method}: target holds ${c.n} rows, expected ${rows}`);
      const [[d]] = (await admin.query(
        `SELECT COUNT(*) AS n FROM (SELECT id, name, amount, created_at, tags FROM src EXCEPT SELECT id, name, amount, created_at, tags FROM \`${target}\`) x`,
      )) as any;
      if (Number(d.n) !== 0) throw new Error(`${method}: ${d.n} source rows differ in the target`);
      results.push(r);
      rmSync(staging, { recursive: true, force: true });
    }
    const base2 = await baseline(admin, outfile, 'dst_baseline_after');
    const peer = await toPostgres(database, rows, tmp);
    const baseMs = (base1.total + base2.total) / 2;
    load.after = loadavg()[0];
    const lines = results.map(
      (r) =>
        `| end to end, staging \`${r.codec}\`, sink \`${r.method}\` | ${secs(r.ms)} | ${fmt((r.rows / r.ms) * 1000)} | ${r.cpuSec.toFixed(1)} | ${r.slices} | ${secs(baseMs)} | ${(baseMs / r.ms).toFixed(2)}× | ${r.peakRssMb.toFixed(0)} |`,
    );
    const md = [
      `## MySQL / MariaDB (${fmt(rows)} rows)`,
      '',
      `\`npm run bench -- mysql\` on ${cpus().length} cores, MariaDB on the same machine; load average ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after.`,
      'Baseline: the server copying by itself (`SELECT … INTO OUTFILE` ' +
        `${secs(base1.out)} s + \`LOAD DATA INFILE\` ${secs(base1.load)} s before ours, ${secs(base2.out)} s + ${secs(base2.load)} s after; ratios against the mean, ${secs(baseMs)} s; server-side files). Ours goes through the client, durable staging with sha256 (\`mysql-tsv\`: LOAD DATA text staged by the source and streamed to LOAD DATA unchanged; \`ndjson\`: rows), ` +
        'a ledger transaction per slice, and compares every row with `EXCEPT` afterwards (not timed).',
      '',
      '| path | seconds | rows/s | Node CPU s | slices | baseline s | ratio (baseline time / ours) | peak RSS MiB |',
      '|---|---|---|---|---|---|---|---|',
      ...lines,
      ...peer,
    ].join('\n');
    console.log(`\n${md}\n`);
    if (!args.includes('--no-write')) writePerformanceSection('mysql', md);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {});
    await admin.end();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child-pg') {
  await childToPg(process.argv[3], process.argv[4], process.argv[5]);
  process.exit(0);
}

if (process.argv[2] === '--child') {
  await child(
    process.argv[3] as 'load-data' | 'insert',
    process.argv[4] as StagingCodec,
    process.argv[5],
    process.argv[6],
    process.argv[7],
  );
  process.exit(0);
}
