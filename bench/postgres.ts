/**
 * `npm run bench -- postgres [--rows N]` (default 1,000,000): PostgreSQL → staging → PostgreSQL, against psql.
 *
 * A table (id bigint, name text, amount numeric(12,2), created_at timestamptz, tags jsonb) is built with
 * generate_series. Measured in one run, on the same data and server:
 * - end to end: `runUnit` PostgresSource → filesystem staging (NDJSON) → PostgresSink (COPY) into a fresh target,
 *   against `psql -c "copy (…) to stdout csv" | psql -c "copy t from stdin csv"`;
 * - source alone: `exportUnit` into filesystem staging, against `psql \copy (…) to '/file' csv`;
 * - sink alone: `importUnit` of that staged session into a fresh target, against `psql \copy t from '/file' csv`;
 * - peak RSS of the end-to-end run at 100k rows and at N rows (each pipeline phase runs in its own child process,
 *   so its peak RSS is its own).
 * Writes the figures to docs/performance.md (section `postgres`).
 */
import { execFileSync, execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { writePerformanceSection } from './_report.js';

const DEFAULT_URL = 'postgres://root@127.0.0.1:5432/test';
const here = fileURLToPath(import.meta.url);

type Phase = 'e2e' | 'export' | 'import';
interface ChildResult {
  phase: Phase;
  rows: number;
  ms: number;
  peakRssMb: number;
  /** CPU seconds of the child (user + system): the pipeline's own JS cost. */
  cpuSec: number;
  slices: number;
}

const DDL = (t: string) =>
  `CREATE TABLE ${t} (id bigint PRIMARY KEY, name text, amount numeric(12,2), created_at timestamptz, tags jsonb)`;

async function child(phase: Phase, schema: string, table: string, target: string, stagingRoot: string): Promise<void> {
  const { PostgresKvStore, PostgresSink, PostgresSource } = await import('../src/postgres/index.js');
  const { exportUnit, importUnit, runUnit, ObjectStoreStagingProvider } = await import('../src/index.js');
  const { FileSystemObjectStore } = await import('../src/fs/index.js');
  const url = process.env.DATABASE_URL || DEFAULT_URL;
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  const db = new Kysely<any>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
  });
  const kv = new PostgresKvStore({ db, schema });
  await kv.migrate();
  const unitId = `${schema}.${table}`;
  const common = {
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: stagingRoot }) }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'bench', unitId, sinkId: target },
    mode: 'full' as const,
    policy: { chunkSize: 10_000, sliceMaxRows: 250_000, exportConcurrency: 2 },
  };
  const source = new PostgresSource({ pool });
  const sink = new PostgresSink({ pool, tables: { [unitId]: `${schema}.${target}` }, ledgerTable: `${schema}.ledger` });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rows = 0;
  let slices = 0;
  if (phase === 'e2e') {
    const r = await runUnit({ ...common, source, sink, disposition: 'append' });
    rows = r.stats.rowsImported;
    slices = r.stats.slices;
  } else if (phase === 'export') {
    const r = await exportUnit({ ...common, source });
    rows = r.stats.rowsExported;
    slices = r.stats.slices;
  } else {
    const r = await importUnit({ ...common, sink, disposition: 'append' });
    rows = r.stats.rowsImported;
    slices = r.stats.slices;
  }
  const ms = performance.now() - t0;
  await pool.end();
  await db.destroy();
  const cpu = process.cpuUsage(cpu0);
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  const usage = process.resourceUsage();
  const out: ChildResult = { phase, rows, ms, peakRssMb: usage.maxRSS / 1024, cpuSec, slices };
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

function runChild(phase: Phase, schema: string, table: string, target: string, stagingRoot: string): ChildResult {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', here, '--child', phase, schema, table, target, stagingRoot],
    {
      encoding: 'utf8',
      env: process.env,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = out.trim().split('\n').at(-1)!;
  return JSON.parse(line) as ChildResult;
}

function timeShell(cmd: string, env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  execSync(cmd, { env, stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/bash' });
  return performance.now() - t0;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const secs = (ms: number) => (ms / 1000).toFixed(2);

/** Entry point of `npm run bench -- postgres [--rows N]`. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--rows');
  const rows = i >= 0 ? Number(args[i + 1]) : Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`Expected \`--rows\` to be a positive integer, got ${args[i + 1]}`);
  const small = Math.min(100_000, rows);
  const url = process.env.DATABASE_URL || DEFAULT_URL;
  const schema = `bench_pg_${randomBytes(4).toString('hex')}`;
  const tmp = mkdtempSync(join(tmpdir(), 'bench-pg-'));
  const csv = join(tmp, 'src.csv');
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const env = { ...process.env, DATABASE_URL: url, PGCONNECT_TIMEOUT: '5' };
  const psql = `psql "${url}" -X -q -v ON_ERROR_STOP=1`;
  const t = (name: string) => `"${schema}"."${name}"`;
  const count = async (name: string) => Number((await admin.query(`SELECT count(*) AS n FROM ${t(name)}`)).rows[0].n);
  try {
    console.log(`postgres bench: ${fmt(rows)} rows, schema ${schema}`);
    const loadBefore = loadavg()[0];
    await admin.query(`CREATE SCHEMA "${schema}"`);
    for (const [name, n] of [
      ['src', rows],
      ['src_small', small],
    ] as const) {
      await admin.query(DDL(t(name)));
      await admin.query(
        `INSERT INTO ${t(name)} SELECT g, 'name-' || g, (g % 1000000) / 100.0, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 millisecond',
           jsonb_build_object('k', g % 10, 'tags', jsonb_build_array('a', g % 7, true)) FROM generate_series(1, $1) g`,
        [n],
      );
      await admin.query(`VACUUM ANALYZE ${t(name)}`);
    }
    for (const name of ['dst_pipe', 'dst_copy_from']) await admin.query(DDL(t(name)));

    console.log('baseline: psql copy to stdout | psql copy from stdin (CSV)');
    const pipeMs = timeShell(
      `set -o pipefail; ${psql} -c "copy (select * from ${t('src').replace(/"/g, '\\"')}) to stdout with csv" | ${psql} -c "copy ${t('dst_pipe').replace(/"/g, '\\"')} from stdin with csv"`,
      env,
    );
    console.log("baseline: psql \\copy … to '/file'");
    const toFileMs = timeShell(
      `${psql} -c "\\copy (select * from ${t('src').replace(/"/g, '\\"')}) to '${csv}' with csv"`,
      env,
    );
    const csvBytes = statSync(csv).size;
    console.log("baseline: psql \\copy … from '/file'");
    const fromFileMs = timeShell(
      `${psql} -c "\\copy ${t('dst_copy_from').replace(/"/g, '\\"')} from '${csv}' with csv"`,
      env,
    );

    console.log(`runUnit at ${fmt(small)} rows`);
    const e2eSmall = runChild('e2e', schema, 'src_small', 'dst_e2e_small', join(tmp, 'stage-small'));
    console.log(`runUnit at ${fmt(rows)} rows`);
    const e2e = runChild('e2e', schema, 'src', 'dst_e2e', join(tmp, 'stage-e2e'));
    console.log('exportUnit alone');
    const exp = runChild('export', schema, 'src', 'dst_import', join(tmp, 'stage-split'));
    console.log('importUnit alone');
    const imp = runChild('import', schema, 'src', 'dst_import', join(tmp, 'stage-split'));

    const checks = {
      dst_pipe: await count('dst_pipe'),
      dst_copy_from: await count('dst_copy_from'),
      dst_e2e: await count('dst_e2e'),
      dst_import: await count('dst_import'),
      dst_e2e_small: await count('dst_e2e_small'),
    };
    for (const [name, n] of Object.entries(checks)) {
      const want = name === 'dst_e2e_small' ? small : rows;
      if (n !== want) throw new Error(`${name} holds ${n} rows, expected ${want}`);
    }
    const { rows: eq } = await admin.query(
      `SELECT count(*)::int AS n FROM ((SELECT * FROM ${t('src')} EXCEPT SELECT * FROM ${t('dst_e2e')}) UNION ALL (SELECT * FROM ${t('dst_e2e')} EXCEPT SELECT * FROM ${t('src')})) x`,
    );
    if (eq[0].n !== 0) throw new Error(`runUnit target differs from the source in ${eq[0].n} rows`);

    const loadAfter = loadavg()[0];
    const rps = (ms: number) => (rows * 1000) / ms;
    const lines: Array<[string, string, number, string, number, ChildResult]> = [
      [
        'end to end',
        'runUnit: PostgresSource → fs staging (NDJSON) → PostgresSink (COPY)',
        e2e.ms,
        'psql copy to stdout \\| psql copy from stdin (CSV)',
        pipeMs,
        e2e,
      ],
      [
        'source alone',
        'exportUnit: PostgresSource → fs staging (NDJSON)',
        exp.ms,
        "psql \\copy (…) to '/file' (CSV)",
        toFileMs,
        exp,
      ],
      [
        'sink alone',
        'importUnit: fs staging → PostgresSink (COPY)',
        imp.ms,
        "psql \\copy … from '/file' (CSV)",
        fromFileMs,
        imp,
      ],
    ];
    const md = [
      '## PostgreSQL source and sink',
      '',
      `\`npm run bench -- postgres --rows ${rows}\` — ${fmt(rows)} rows (id bigint, name text, amount numeric(12,2), created_at timestamptz, tags jsonb)`,
      `built with generate_series, on the local PostgreSQL (${(await admin.query('SHOW server_version')).rows[0].server_version}), ${e2e.slices} planned slices of ≤ 250,000 rows,`,
      'exportConcurrency 2, chunkSize 10,000, NDJSON staging on the local filesystem, targets created fresh (primary key on id).',
      'Each pipeline phase runs in its own child process (its peak RSS is its own); psql baselines run in the same benchmark on the same data.',
      `Every target was checked to hold ${fmt(rows)} rows, and the runUnit target equals the source (EXCEPT both ways).`,
      `Measured ${new Date().toISOString().slice(0, 10)} on this machine (Node ${process.version}, ${cpus().length} cores).`,
      `Load average (1 min) was ${loadBefore.toFixed(1)} at the start and ${loadAfter.toFixed(1)} at the end: other work shared the machine, so`,
      'wall-clock figures are noisy and each ratio compares runs made minutes apart. The Node CPU seconds of each pipeline',
      'child are given too (they exclude the server’s own work).',
      '',
      '| path | ours | seconds | rows/s | Node CPU s | baseline | seconds | rows/s | ratio (baseline time / ours) | peak RSS MiB |',
      '|---|---|---:|---:|---:|---|---:|---:|---:|---:|',
      ...lines.map(
        ([what, ours, ms, base, bms, r]) =>
          `| ${what} | ${ours} | ${secs(ms)} | ${fmt(rps(ms))} | ${r.cpuSec.toFixed(1)} | ${base} | ${secs(bms)} | ${fmt(rps(bms))} | ${(bms / ms).toFixed(2)}× | ${fmt(r.peakRssMb)} |`,
      ),
      '',
      `Peak RSS of runUnit: ${fmt(e2eSmall.peakRssMb)} MiB at ${fmt(small)} rows, ${fmt(e2e.peakRssMb)} MiB at ${fmt(rows)} rows (${(e2e.peakRssMb / e2eSmall.peakRssMb).toFixed(2)}× for ${(rows / small).toFixed(0)}× the rows).`,
      `CSV size: ${(csvBytes / 1048576).toFixed(1)} MiB.`,
      '',
      `Target: end to end ≥ 0.5× the psql CSV pipe — reached ${(pipeMs / e2e.ms).toFixed(2)}×.`,
    ].join('\n');
    console.log(`\n${md}\n`);
    writePerformanceSection('postgres', md);
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [, , , phase, schema, table, target, root] = process.argv;
  await child(phase as Phase, schema, table, target, root);
}
