/**
 * `npm run bench -- e2e [--rows N] [--codecs pg-copy,arrow,ndjson]` (default 1,000,000 rows, every codec):
 * PostgreSQL → durable filesystem staging → PostgreSQL, per staging codec, against psql's own pipe.
 *
 * A table (id bigint, name text, amount numeric(12,2), created_at timestamptz with microseconds, tags jsonb) is
 * built with generate_series in a random schema. Measured in one run, on the same data and server:
 * - end to end: `runUnit` PostgresSource → filesystem staging → PostgresSink into a fresh target, against
 *   `psql -c "copy (…) to stdout" | psql -c "copy t from stdin"` (text format);
 * - export alone: `exportUnit` into filesystem staging, against `psql -c "\copy (…) to '/file'"`;
 * - import alone: `importUnit` of that staged session into a fresh target, against `psql -c "\copy t from '/file'"`;
 * - each for the pass-through codec (`pgCopyCodec()`), Arrow and NDJSON staging, as ratios (baseline time / ours);
 * - peak RSS of the end-to-end run at 100k rows and at N rows, and the Node CPU seconds of every pipeline child
 *   (each phase runs in its own child process, so its peak RSS and CPU are its own);
 * - every target compared with the source as text, row by row (EXCEPT ALL both ways).
 * Writes the figures to docs/performance.md (section `e2e`) unless `--no-write`.
 */
import { execFileSync, execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { RecordCodec } from '../src/index.js';
import { writePerformanceSection } from './_report.js';

const DEFAULT_URL = 'postgres://root@127.0.0.1:5432/test';
const here = fileURLToPath(import.meta.url);
const CODECS = ['pg-copy', 'arrow', 'ndjson'] as const;
type Codec = (typeof CODECS)[number];
type Phase = 'e2e' | 'export' | 'import';
const SLICE_ROWS = 250_000;
const CHUNK = 10_000;
const CONCURRENCY = 2;

interface ChildResult {
  phase: Phase;
  codec: Codec;
  rows: number;
  ms: number;
  peakRssMb: number;
  /** CPU seconds of the child (user + system): the pipeline's own JS cost, not the server's. */
  cpuSec: number;
  slices: number;
  bytes: number;
}

const DDL = (t: string) =>
  `CREATE TABLE ${t} (id bigint PRIMARY KEY, name text, amount numeric(12,2), created_at timestamptz, tags jsonb)`;

async function codecOf(name: Codec): Promise<RecordCodec> {
  if (name === 'arrow') return (await import('../src/arrow/index.js')).arrowCodec({ batchRows: CHUNK });
  if (name === 'pg-copy') return (await import('../src/postgres/index.js')).pgCopyCodec();
  return (await import('../src/index.js')).ndjsonCodec();
}

async function child(
  phase: Phase,
  codecName: Codec,
  schema: string,
  table: string,
  target: string,
  stagingRoot: string,
): Promise<void> {
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
  const codec = await codecOf(codecName);
  const common = {
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: stagingRoot }), codec }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'bench', unitId, sinkId: target },
    mode: 'full' as const,
    policy: { chunkSize: CHUNK, sliceMaxRows: SLICE_ROWS, exportConcurrency: CONCURRENCY },
  };
  const source = new PostgresSource({ pool });
  const sink = new PostgresSink({ pool, tables: { [unitId]: `${schema}.${target}` }, ledgerTable: `${schema}.ledger` });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rows = 0;
  let slices = 0;
  let bytes = 0;
  if (phase === 'e2e') {
    const r = await runUnit({ ...common, source, sink, disposition: 'append' });
    rows = r.stats.rowsImported;
    ({ slices, bytesStaged: bytes } = r.stats);
  } else if (phase === 'export') {
    const r = await exportUnit({ ...common, source });
    rows = r.stats.rowsExported;
    ({ slices, bytesStaged: bytes } = r.stats);
  } else {
    const r = await importUnit({ ...common, sink, disposition: 'append' });
    rows = r.stats.rowsImported;
    ({ slices, bytesStaged: bytes } = r.stats);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await pool.end();
  await db.destroy();
  const out: ChildResult = {
    phase,
    codec: codecName,
    rows,
    ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    cpuSec: (cpu.user + cpu.system) / 1e6,
    slices,
    bytes,
  };
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
}

function runChild(
  phase: Phase,
  codec: Codec,
  schema: string,
  table: string,
  target: string,
  stagingRoot: string,
): ChildResult {
  const out = execFileSync(
    process.execPath,
    [...childArgs(), '--import', 'tsx', here, '--child', phase, codec, schema, table, target, stagingRoot],
    { encoding: 'utf8', env: process.env, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
}

/** Extra Node flags for the pipeline children, e.g. `BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` (profiles). */
function childArgs(): string[] {
  return (process.env.BENCH_CHILD_ARGS ?? '').split(' ').filter(Boolean);
}

function timeShell(cmd: string, env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  execSync(cmd, { env, stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/bash' });
  return performance.now() - t0;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const secs = (ms: number) => (ms / 1000).toFixed(2);
const load = () => loadavg()[0].toFixed(1);

/** Entry point of `npm run bench -- e2e [--rows N] [--codecs a,b] [--no-write]`. */
export async function main(args: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rows = Number(arg('--rows') ?? 1_000_000);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`Expected \`--rows\` to be a positive integer, got ${arg('--rows')}`);
  const codecs = (arg('--codecs')?.split(',') ?? [...CODECS]) as Codec[];
  for (const c of codecs) if (!CODECS.includes(c)) throw new Error(`Unknown codec ${c}: expected ${CODECS.join(', ')}`);
  const write = !args.includes('--no-write');
  const small = Math.min(100_000, rows);
  const url = process.env.DATABASE_URL || DEFAULT_URL;
  const schema = `bench_e2e_${randomBytes(4).toString('hex')}`;
  const tmp = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  const file = join(tmp, 'src.copy');
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const env = { ...process.env, DATABASE_URL: url, PGCONNECT_TIMEOUT: '5' };
  const psql = `psql "${url}" -X -q -v ON_ERROR_STOP=1`;
  const t = (name: string) => `"${schema}"."${name}"`;
  const sh = (name: string) => t(name).replace(/"/g, '\\"');
  const count = async (name: string) => Number((await admin.query(`SELECT count(*) AS n FROM ${t(name)}`)).rows[0].n);
  /** Rows of `name` that differ from the source compared as text, both ways (EXCEPT ALL). */
  const differing = async (source: string, name: string) =>
    Number(
      (
        await admin.query(
          `SELECT count(*)::int AS n FROM ((SELECT s::text FROM ${t(source)} s EXCEPT ALL SELECT d::text FROM ${t(name)} d)
           UNION ALL (SELECT d::text FROM ${t(name)} d EXCEPT ALL SELECT s::text FROM ${t(source)} s)) x`,
        )
      ).rows[0].n,
    );
  try {
    const loadStart = load();
    const startedAt = new Date().toISOString();
    console.log(`e2e bench: ${fmt(rows)} rows, codecs ${codecs.join(', ')}, schema ${schema}, load ${loadStart}`);
    await admin.query(`CREATE SCHEMA "${schema}"`);
    for (const [name, n] of [
      ['src', rows],
      ['src_small', small],
    ] as const) {
      await admin.query(DDL(t(name)));
      await admin.query(
        `INSERT INTO ${t(name)} SELECT g, 'name-' || g, (g % 1000000) / 100.0,
           '2024-01-01T00:00:00Z'::timestamptz + g * interval '1001 microseconds',
           jsonb_build_object('k', g % 10, 'tags', jsonb_build_array('a', g % 7, true)) FROM generate_series(1, $1) g`,
        [n],
      );
      await admin.query(`VACUUM ANALYZE ${t(name)}`);
    }
    for (const name of ['dst_pipe', 'dst_copy_from']) await admin.query(DDL(t(name)));

    console.log('baseline: psql copy to stdout | psql copy from stdin (text)');
    const pipeMs = timeShell(
      `set -o pipefail; ${psql} -c "copy (select * from ${sh('src')}) to stdout" | ${psql} -c "copy ${sh('dst_pipe')} from stdin"`,
      env,
    );
    console.log("baseline: psql \\copy … to '/file'");
    const toFileMs = timeShell(`${psql} -c "\\copy (select * from ${sh('src')}) to '${file}'"`, env);
    const fileBytes = statSync(file).size;
    console.log("baseline: psql \\copy … from '/file'");
    const fromFileMs = timeShell(`${psql} -c "\\copy ${sh('dst_copy_from')} from '${file}'"`, env);

    const results: Record<string, { e2eSmall: ChildResult; e2e: ChildResult; exp: ChildResult; imp: ChildResult }> = {};
    const equal: Record<string, number> = {};
    for (const codec of codecs) {
      const id = codec.replace(/\W/g, '_');
      for (const name of [`e2e_small_${id}`, `e2e_${id}`, `import_${id}`]) await admin.query(DDL(t(name)));
      console.log(`${codec}: runUnit at ${fmt(small)} rows (load ${load()})`);
      const e2eSmall = runChild('e2e', codec, schema, 'src_small', `e2e_small_${id}`, join(tmp, `stage-small-${id}`));
      console.log(`${codec}: runUnit at ${fmt(rows)} rows (load ${load()})`);
      const e2e = runChild('e2e', codec, schema, 'src', `e2e_${id}`, join(tmp, `stage-e2e-${id}`));
      console.log(`${codec}: exportUnit alone (load ${load()})`);
      const exp = runChild('export', codec, schema, 'src', `import_${id}`, join(tmp, `stage-split-${id}`));
      console.log(`${codec}: importUnit alone (load ${load()})`);
      const imp = runChild('import', codec, schema, 'src', `import_${id}`, join(tmp, `stage-split-${id}`));
      results[codec] = { e2eSmall, e2e, exp, imp };
      for (const [name, n, source] of [
        [`e2e_small_${id}`, small, 'src_small'],
        [`e2e_${id}`, rows, 'src'],
        [`import_${id}`, rows, 'src'],
      ] as const) {
        const got = await count(name);
        if (got !== n) throw new Error(`${name} holds ${got} rows, expected ${n}`);
        equal[name] = await differing(source, name);
      }
      rmSync(join(tmp, `stage-e2e-${id}`), { recursive: true, force: true });
      rmSync(join(tmp, `stage-split-${id}`), { recursive: true, force: true });
    }
    for (const name of ['dst_pipe', 'dst_copy_from']) {
      if ((await count(name)) !== rows) throw new Error(`${name} does not hold ${rows} rows`);
      equal[name] = await differing('src', name);
    }
    const loadEnd = load();

    const rps = (ms: number) => (rows * 1000) / ms;
    const title: Record<Codec, string> = {
      'pg-copy': 'pass-through (`pgCopyCodec()`)',
      arrow: 'Arrow (`arrowCodec()`)',
      ndjson: 'NDJSON',
    };
    const eq = (name: string) => (equal[name] === 0 ? 'equal' : `**${fmt(equal[name])} rows differ**`);
    const lines: string[] = [];
    for (const codec of codecs) {
      const r = results[codec];
      const id = codec.replace(/\W/g, '_');
      const row = (what: string, c: ChildResult, base: number, target: string) =>
        `| ${title[codec]} | ${what} | ${secs(c.ms)} | ${fmt(rps(c.ms))} | ${c.cpuSec.toFixed(1)} | ${secs(base)} | ${(base / c.ms).toFixed(2)}× | ${fmt(c.peakRssMb)} | ${(c.bytes / 1048576).toFixed(1)} | ${target} |`;
      lines.push(row('end to end (runUnit)', r.e2e, pipeMs, eq(`e2e_${id}`)));
      lines.push(row('export alone (exportUnit)', r.exp, toFileMs, '–'));
      lines.push(row('import alone (importUnit)', r.imp, fromFileMs, eq(`import_${id}`)));
    }
    const md = [
      '## End to end: PostgreSQL → durable staging → PostgreSQL, per codec',
      '',
      `\`npm run bench -- e2e --rows ${rows}\` — ${fmt(rows)} rows (id bigint, name text, amount numeric(12,2), created_at timestamptz with`,
      `microseconds, tags jsonb) built with generate_series on the local PostgreSQL (${(await admin.query('SHOW server_version')).rows[0].server_version}),`,
      `planned slices of ≤ ${fmt(SLICE_ROWS)} rows, exportConcurrency ${CONCURRENCY}, chunkSize ${fmt(CHUNK)}, filesystem staging, targets created`,
      'fresh (primary key on id). Each pipeline phase runs in its own child process (its peak RSS and CPU are its own); the psql',
      'baselines (text format) run in the same benchmark on the same data. Ratio = baseline seconds / ours (1.00× = as fast as psql).',
      `Every target was checked to hold ${fmt(rows)} rows and compared with the source as text (\`SELECT t::text … EXCEPT ALL\` both ways).`,
      `Measured ${startedAt.slice(0, 16)}Z on this machine (Node ${process.version}, ${cpus().length} cores); 1-minute load average`,
      `**${loadStart} at the start and ${loadEnd} at the end** (the machine is shared: wall-clock figures move with the load; the`,
      'Node CPU seconds do not include the server’s work).',
      '',
      `Baselines: pipe \`psql copy to stdout | psql copy from stdin\` ${secs(pipeMs)} s (${fmt(rps(pipeMs))} rows/s, target ${eq('dst_pipe')});`,
      `\`\\copy (…) to '/file'\` ${secs(toFileMs)} s; \`\\copy … from '/file'\` ${secs(fromFileMs)} s (target ${eq('dst_copy_from')}); COPY text ${(fileBytes / 1048576).toFixed(1)} MiB.`,
      '',
      '| codec | path | seconds | rows/s | Node CPU s | psql seconds | ratio | peak RSS MiB | staged MiB | target vs source |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...lines,
      '',
      'Peak RSS of runUnit:',
      ...codecs.map((c) => {
        const r = results[c];
        return `- ${title[c]}: ${fmt(r.e2eSmall.peakRssMb)} MiB at ${fmt(small)} rows, ${fmt(r.e2e.peakRssMb)} MiB at ${fmt(rows)} rows (${(r.e2e.peakRssMb / r.e2eSmall.peakRssMb).toFixed(2)}×; target at ${fmt(small)}: ${eq(`e2e_small_${c.replace(/\W/g, '_')}`)}).`;
      }),
      ...(codecs.some((c) => c !== 'pg-copy' && equal[`e2e_${c.replace(/\W/g, '_')}`] !== 0)
        ? [
            '',
            'Where a row path differs from the source, compare the `timestamptz` column: values that pass through a JS `Date`',
            'lose their microseconds (2 rows differ per changed row: one each way). The exact value model (issue 10) removes that.',
          ]
        : []),
      '',
      'Targets of issue 12 (reached / not reached, as measured above):',
      ...codecs.map((c) => {
        const r = results[c];
        const ratio = pipeMs / r.e2e.ms;
        const goal = c === 'pg-copy' ? 0.8 : 0.5;
        const growth = r.e2e.peakRssMb / r.e2eSmall.peakRssMb;
        const rssOk = growth <= 1.2 && r.e2e.peakRssMb < 300;
        return `- ${title[c]}: end to end ${ratio.toFixed(2)}× the psql pipe (target ≥ ${goal}×: ${ratio >= goal ? 'reached' : '**not reached**'}); peak RSS ${fmt(r.e2e.peakRssMb)} MiB, ${growth.toFixed(2)}× the ${fmt(small)}-row run (target ≤ 1.2× and < 300 MiB: ${rssOk ? 'reached' : '**not reached**'}); target equal to the source as text: ${equal[`e2e_${c.replace(/\W/g, '_')}`] === 0 ? 'yes' : '**no**'}.`;
      }),
    ].join('\n');
    console.log(`\n${md}\n`);
    if (write) writePerformanceSection('e2e', md);
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [, , , phase, codec, schema, table, target, root] = process.argv;
  await child(phase as Phase, codec as Codec, schema, table, target, root);
}
