/**
 * `npm run bench -- mysql [--rows N] [--rounds R]` (default 1,000,000 rows, 3 rounds of the PostgreSQL comparison): MariaDB → staging → MariaDB, against the server's own
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
 * - MariaDB → PostgreSQL, when `pgloader` is installed (said so when not), `--rounds R` times (default 3, medians
 *   with their spread): pgloader (`workers = 2`, the table it creates keeps the primary key) against `runUnit`
 *   MySqlSource → `mysql-tsv` staging (transcoded to COPY text by the sink) and → NDJSON staging → PostgresSink, into a
 *   target with the same primary key; every target compared with the source as text (sha256 of its rows in key order).
 *   The MariaDB → MariaDB paths run once.
 * Writes the figures to docs/performance.md (section `mysql`) unless `--no-write`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { spread, writePerformanceSection } from './_report.js';

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

/** MariaDB → PostgreSQL: `runUnit` MySqlSource → `codec` staging → PostgresSink into `pgSchema.dst`. */
async function childToPg(codec: StagingCodec, database: string, pgSchema: string, stagingRoot: string): Promise<void> {
  const { MySqlSource, mySqlLoadDataCodec } = await import('../src/mysql/index.js');
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
    staging: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root: stagingRoot }),
      codec: codec === 'mysql-tsv' ? mySqlLoadDataCodec() : 'ndjson',
    }),
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
    codec,
    rows: r.stats.rowsImported,
    ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    cpuSec: (cpu.user + cpu.system) / 1e6,
    slices: r.stats.slices,
  };
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

/** The sha256 of the source's rows as text (`id name amount created_at tags`, tab-separated lines in key order). */
async function sourceDigest(admin: mysql.Connection): Promise<string> {
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  // streamed (the parent's memory stays flat at any row count)
  const core = (admin as unknown as { connection: { query(o: object): { stream(): AsyncIterable<string[]> } } })
    .connection;
  const rows = core
    .query({
      sql: 'SELECT CAST(id AS CHAR), name, CAST(amount AS CHAR), CAST(created_at AS CHAR), CAST(tags AS CHAR) FROM src ORDER BY id',
      rowsAsArray: true,
    })
    .stream();
  for await (const r of rows) h.update(`${r.join('\t')}\n`);
  return h.digest('hex');
}

/**
 * The sha256 of a PostgreSQL table's rows as the same text as {@link sourceDigest} (COPY text of the same
 * expressions; timestamps with time zone read in UTC, as MariaDB's DATETIME values were written).
 */
async function targetDigest(pool: import('pg').Pool, table: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { pipeline } = await import('node:stream/promises');
  const { to } = await import('pg-copy-streams');
  const client = await pool.connect();
  try {
    const { rows } = await client.query(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'created_at'`,
      [table],
    );
    const at = /with time zone/.test(rows[0].t) ? "created_at AT TIME ZONE 'UTC'" : 'created_at';
    const h = createHash('sha256');
    await pipeline(
      client.query(
        to(
          `COPY (SELECT id::text, name, amount::text, to_char(${at}, 'YYYY-MM-DD HH24:MI:SS.US'), tags::text FROM ${table} t ORDER BY t.id) TO STDOUT`,
        ),
      ),
      async (chunks: AsyncIterable<Buffer>) => {
        for await (const c of chunks) h.update(c);
      },
    );
    return h.digest('hex');
  } finally {
    client.release();
  }
}

/**
 * MariaDB → PostgreSQL against pgloader, when installed, `rounds` times: the markdown lines of the comparison, or why
 * it was not measured. Each round runs pgloader, then ours with `mysql-tsv` staging, then with NDJSON staging, each
 * into a fresh target with the same primary key; every target is compared with the source as text (sha256 of the rows
 * in key order).
 */
async function toPostgres(
  admin: mysql.Connection,
  database: string,
  rows: number,
  tmp: string,
  rounds: number,
): Promise<string[]> {
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
  const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
  const pgSchema = `${database}_pg`;
  const loaderSchema = `${database}_pgloader`;
  const my = new URL(process.env.MYSQL_URL || DEFAULT_URL);
  const codecs: StagingCodec[] = ['mysql-tsv', 'ndjson'];
  const times: Record<string, number[]> = { pgloader: [], 'mysql-tsv': [], ndjson: [] };
  const ratios: Record<string, number[]> = { 'mysql-tsv': [], ndjson: [] };
  const cpu: Record<string, number[]> = { 'mysql-tsv': [], ndjson: [] };
  const rss: Record<string, number[]> = { 'mysql-tsv': [], ndjson: [] };
  const equal: Record<string, string> = {};
  try {
    const want = await sourceDigest(admin);
    const cmd = join(tmp, 'load.pgloader');
    writeFileSync(
      cmd,
      `LOAD DATABASE FROM mysql://${my.username || 'root'}@${my.hostname}:${my.port || 3306}/${database}
       INTO ${pgUrl}
       WITH include drop, create tables, create indexes, workers = 2, concurrency = 1
       INCLUDING ONLY TABLE NAMES MATCHING 'src'
       ALTER SCHEMA '${database}' RENAME TO '${loaderSchema}';\n`,
    );
    const check = async (name: string, table: string) => {
      const got = await targetDigest(pool, table);
      const ok = got === want;
      if (!ok) console.warn(`${name}: the target differs from the source as text`);
      equal[name] = equal[name] === 'differs' || !ok ? 'differs' : 'equal';
    };
    for (let round = 1; round <= rounds; round++) {
      console.log(`MariaDB → PostgreSQL round ${round}/${rounds}: pgloader (workers = 2)`);
      await pool.query(`DROP SCHEMA IF EXISTS "${loaderSchema}" CASCADE`);
      const l0 = performance.now();
      execFileSync('pgloader', ['--quiet', cmd], { stdio: ['ignore', 'ignore', 'inherit'], cwd: tmp });
      const loaderMs = performance.now() - l0;
      times.pgloader.push(loaderMs);
      const { rows: pk } = await pool.query(
        `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = '"${loaderSchema}".src'::regclass AND contype = 'p'`,
      );
      if (!pk[0].n) throw new Error('the table pgloader created has no primary key');
      await check('pgloader', `"${loaderSchema}".src`);
      for (const codec of codecs) {
        console.log(`MariaDB → PostgreSQL round ${round}/${rounds}: runUnit, ${codec} staging, PostgresSink`);
        await pool.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`);
        await pool.query(`CREATE SCHEMA "${pgSchema}"`);
        await pool.query(
          `CREATE TABLE "${pgSchema}".dst (id bigint PRIMARY KEY, name varchar(64), amount numeric(12,2), created_at timestamp(6), tags jsonb)`,
        );
        const staging = join(tmp, `staging-pg-${codec}`);
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', here, '--child-pg', codec, database, pgSchema, staging],
          { encoding: 'utf8', env: process.env, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        rmSync(staging, { recursive: true, force: true });
        const ours = JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
        if (ours.rows !== rows) throw new Error(`${codec}: imported ${ours.rows} rows, expected ${rows}`);
        times[codec].push(ours.ms);
        ratios[codec].push(loaderMs / ours.ms);
        cpu[codec].push(ours.cpuSec);
        rss[codec].push(ours.peakRssMb);
        await check(codec, `"${pgSchema}".dst`);
      }
    }
    const x = (r: number) => `${r.toFixed(2)}×`;
    const s2 = (ms: number) => secs(ms);
    return [
      '',
      `MariaDB → PostgreSQL (${fmt(rows)} rows, ${rounds} round${rounds > 1 ? 's' : ''}: pgloader, then ours with each staging codec, in every round; **median (min–max)**; ratio = pgloader's seconds / ours in the same round). pgloader \`workers = 2\` creates its table with the primary key; ours load a pre-created table with the same primary key. Every target compared with the source as text (sha256 of the rows in key order: ids, names, decimals, timestamps to the microsecond, JSON as text).`,
      '',
      '| path | seconds | Node CPU s | peak RSS MiB | vs pgloader | target vs source |',
      '|---|---|---|---|---|---|',
      `| pgloader 3 (\`workers = 2\`) | ${spread(times.pgloader, s2)} | – | – | 1.00× | ${equal.pgloader} |`,
      ...codecs.map(
        (c) =>
          `| \`runUnit\` MySqlSource → \`${c}\` staging → PostgresSink | ${spread(times[c], s2)} | ${spread(cpu[c], (v) => v.toFixed(1))} | ${Math.max(...rss[c]).toFixed(0)} | **${spread(ratios[c], x)}** | ${equal[c]} |`,
      ),
    ];
  } catch (err) {
    console.warn(`MariaDB → PostgreSQL comparison failed: ${String(err)}`);
    return ['', `MariaDB → PostgreSQL: the pgloader comparison failed in this run (${String(err).slice(0, 200)}).`];
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).catch(() => {});
    await pool.query(`DROP SCHEMA IF EXISTS "${loaderSchema}" CASCADE`).catch(() => {});
    await pool.end();
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

/** Entry point of `npm run bench -- mysql [--rows N] [--rounds R]`. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--rows');
  const rows =
    i >= 0
      ? Number(args[i + 1])
      : Number(args.find((a, k) => /^\d+$/.test(a) && args[k - 1] !== '--rounds') ?? 1_000_000);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`Expected \`--rows\` to be a positive integer, got ${args[i + 1]}`);
  const r = args.indexOf('--rounds');
  const rounds = r >= 0 ? Number(args[r + 1]) : 3;
  if (!Number.isInteger(rounds) || rounds <= 0)
    throw new Error(`Expected \`--rounds\` to be a positive integer, got ${args[r + 1]}`);
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
    const peer = await toPostgres(admin, database, rows, tmp, rounds);
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
  await childToPg(process.argv[3] as StagingCodec, process.argv[4], process.argv[5], process.argv[6]);
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
