/**
 * `npm run bench -- e2e [--rows N] [--codecs pg-copy,arrow,ndjson] [--rounds R]` (default 1,000,000 rows, every codec,
 * 3 rounds reported as medians with their spread):
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
 * - every target compared with the source as text, row by row (EXCEPT ALL both ways);
 * - pgcopydb (`copy table-data --table-jobs 2`) into a database of its own with the same primary key, when installed
 *   (said so when not), its target compared by count and md5 of the rows as text in key order.
 * Writes the figures to docs/performance.md (section `e2e`) unless `--no-write`.
 */
import { execFileSync, execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { RecordCodec } from '../src/index.js';
import { resolvePolicy } from '../src/pipeline/options.js';
import { spread, stats, writePerformanceSection } from './_report.js';

const DEFAULT_URL = 'postgres://root@127.0.0.1:5432/test';
const here = fileURLToPath(import.meta.url);
const CODECS = ['pg-copy', 'arrow', 'ndjson'] as const;
type Codec = (typeof CODECS)[number];
type Phase = 'e2e' | 'export' | 'import';
const CHUNK = 10_000;
/**
 * The runs take the default policy (what a user who passes none gets); `BENCH_SLICE_ROWS` and
 * `BENCH_EXPORT_CONCURRENCY` override `sliceMaxRows` and `exportConcurrency` (the children inherit them).
 */
const OVERRIDES = {
  ...(process.env.BENCH_SLICE_ROWS ? { sliceMaxRows: Number(process.env.BENCH_SLICE_ROWS) } : {}),
  ...(process.env.BENCH_EXPORT_CONCURRENCY ? { exportConcurrency: Number(process.env.BENCH_EXPORT_CONCURRENCY) } : {}),
};

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

/**
 * A table of the bench's shape. Targets (`target`) are made without autovacuum, every contender's alike: a vacuum of
 * the million rows one step loaded would otherwise run during the next step, whichever contender that is.
 */
const DDL = (t: string, target = true) =>
  `CREATE TABLE ${t} (id bigint PRIMARY KEY, name text, amount numeric(12,2), created_at timestamptz, tags jsonb)${target ? ' WITH (autovacuum_enabled = off)' : ''}`;

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
  const t0 = performance.now();
  // `BENCH_TRACE=1`: each event of the run on stderr, with the seconds since the run started
  const trace = process.env.BENCH_TRACE
    ? {
        onEvent: (e: { type: string; slice?: number }) =>
          process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(3)} ${phase} ${e.type} ${e.slice ?? ''}\n`),
      }
    : {};
  const common = {
    ...trace,
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: stagingRoot }), codec }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'bench', unitId, sinkId: target },
    mode: 'full' as const,
    policy: OVERRIDES,
  };
  const source = new PostgresSource({ pool });
  const sink = new PostgresSink({ pool, tables: { [unitId]: `${schema}.${target}` }, ledgerTable: `${schema}.ledger` });
  const cpu0 = process.cpuUsage();
  const started = performance.now();
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
  const ms = performance.now() - started;
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

/** Whether a command is on the PATH. */
function installed(cmd: string): boolean {
  try {
    execSync(`command -v ${cmd}`, { stdio: 'ignore', shell: '/bin/bash' });
    return true;
  } catch {
    return false;
  }
}

interface Round {
  pipeMs: number;
  toFileMs: number;
  fromFileMs: number;
  pgcopydbMs?: number;
  results: Record<string, { e2eSmall: ChildResult; e2e: ChildResult; exp: ChildResult; imp: ChildResult }>;
}

/**
 * Entry point of `npm run bench -- e2e [--rows N] [--codecs a,b] [--rounds R] [--no-write]`: R rounds (default 3) of
 * every measurement on the same source table, reported as medians with their spread (min–max).
 */
export async function main(args: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rows = Number(arg('--rows') ?? 1_000_000);
  if (!Number.isInteger(rows) || rows <= 0)
    throw new Error(`Expected \`--rows\` to be a positive integer, got ${arg('--rows')}`);
  const rounds = Number(arg('--rounds') ?? 3);
  if (!Number.isInteger(rounds) || rounds <= 0)
    throw new Error(`Expected \`--rounds\` to be a positive integer, got ${arg('--rounds')}`);
  const codecs = (arg('--codecs')?.split(',') ?? [...CODECS]) as Codec[];
  for (const c of codecs) if (!CODECS.includes(c)) throw new Error(`Unknown codec ${c}: expected ${CODECS.join(', ')}`);
  const write = !args.includes('--no-write');
  const small = Math.min(100_000, rows);
  const url = process.env.DATABASE_URL || DEFAULT_URL;
  const schema = `bench_e2e_${randomBytes(4).toString('hex')}`;
  // pgcopydb copies between two databases: the target is a database of its own, same schema, same primary key
  const pgcopydb = installed('pgcopydb');
  const peerDb = `${schema}_peer`;
  const peerUrl = (() => {
    const u = new URL(url);
    u.pathname = `/${peerDb}`;
    return u.toString();
  })();
  const tmp = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  const file = join(tmp, 'src.copy');
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  let peer: pg.Pool | undefined;
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
  /** The table as text, hashed in key order (to compare across databases). */
  const digest = async (pool: pg.Pool, table: string) =>
    (await pool.query(`SELECT count(*)::int AS n, md5(string_agg(x::text, E'\\n' ORDER BY x.id)) AS h FROM ${table} x`))
      .rows[0] as { n: number; h: string };
  const equal: Record<string, number> = {};
  try {
    const loadStart = load();
    const startedAt = new Date().toISOString();
    console.log(
      `e2e bench: ${fmt(rows)} rows, codecs ${codecs.join(', ')}, ${rounds} rounds, schema ${schema}, load ${loadStart}`,
    );
    console.log(
      pgcopydb ? 'pgcopydb: installed, measured' : 'pgcopydb: not installed (apt-get install pgcopydb), skipped',
    );
    await admin.query(`CREATE SCHEMA "${schema}"`);
    for (const [name, n] of [
      ['src', rows],
      ['src_small', small],
    ] as const) {
      await admin.query(DDL(t(name), false));
      await admin.query(
        `INSERT INTO ${t(name)} SELECT g, 'name-' || g, (g % 1000000) / 100.0,
           '2024-01-01T00:00:00Z'::timestamptz + g * interval '1001 microseconds',
           jsonb_build_object('k', g % 10, 'tags', jsonb_build_array('a', g % 7, true)) FROM generate_series(1, $1) g`,
        [n],
      );
      await admin.query(`VACUUM ANALYZE ${t(name)}`);
    }
    const sourceDigest = pgcopydb ? await digest(admin, t('src')) : undefined;
    if (pgcopydb) {
      await admin.query(`CREATE DATABASE "${peerDb}"`);
      peer = new pg.Pool({ connectionString: peerUrl, max: 1 });
      await peer.query(`CREATE SCHEMA "${schema}"`);
      writeFileSync(join(tmp, 'filters.ini'), `[include-only-table]\n${schema}.src\n`);
    }

    const all: Round[] = [];
    for (let round = 1; round <= rounds; round++) {
      const r = `r${round}`;
      for (const name of [`dst_pipe_${r}`, `dst_copy_from_${r}`]) await admin.query(DDL(t(name)));
      // each timed step starts after a checkpoint: the WAL of the step before is not flushed during this one
      const settle = async () => {
        await admin.query('CHECKPOINT');
        await peer?.query('CHECKPOINT');
      };
      await settle();
      console.log(`round ${round}: psql copy to stdout | psql copy from stdin (text) (load ${load()})`);
      const pipeMs = timeShell(
        `set -o pipefail; ${psql} -c "copy (select * from ${sh('src')}) to stdout" | ${psql} -c "copy ${sh(`dst_pipe_${r}`)} from stdin"`,
        env,
      );
      await settle();
      console.log(`round ${round}: psql \\copy … to '/file'`);
      const toFileMs = timeShell(`${psql} -c "\\copy (select * from ${sh('src')}) to '${file}'"`, env);
      await settle();
      console.log(`round ${round}: psql \\copy … from '/file'`);
      const fromFileMs = timeShell(`${psql} -c "\\copy ${sh(`dst_copy_from_${r}`)} from '${file}'"`, env);
      let pgcopydbMs: number | undefined;
      if (peer) {
        await peer.query(`DROP TABLE IF EXISTS ${t('src')}`);
        await peer.query(DDL(t('src')));
        const dir = join(tmp, `pgcopydb-${r}`);
        await settle();
        console.log(`round ${round}: pgcopydb copy table-data --table-jobs 2 (load ${load()})`);
        pgcopydbMs = timeShell(
          `pgcopydb copy table-data --source "${url}" --target "${peerUrl}" --table-jobs 2 --filters "${join(tmp, 'filters.ini')}" --dir "${dir}" >/dev/null 2>&1`,
          env,
        );
        const got = await digest(peer, t('src'));
        equal[`pgcopydb_${r}`] =
          got.n === sourceDigest!.n && got.h === sourceDigest!.h ? 0 : Math.max(1, Math.abs(rows - got.n));
        rmSync(dir, { recursive: true, force: true });
      }
      const results: Round['results'] = {};
      for (const codec of codecs) {
        const id = `${codec.replace(/\W/g, '_')}_${r}`;
        for (const name of [`e2e_small_${id}`, `e2e_${id}`, `import_${id}`]) await admin.query(DDL(t(name)));
        await settle();
        console.log(`round ${round}, ${codec}: runUnit at ${fmt(small)} rows (load ${load()})`);
        const e2eSmall = runChild('e2e', codec, schema, 'src_small', `e2e_small_${id}`, join(tmp, `stage-small-${id}`));
        await settle();
        console.log(`round ${round}, ${codec}: runUnit at ${fmt(rows)} rows (load ${load()})`);
        const e2e = runChild('e2e', codec, schema, 'src', `e2e_${id}`, join(tmp, `stage-e2e-${id}`));
        await settle();
        console.log(`round ${round}, ${codec}: exportUnit alone (load ${load()})`);
        const exp = runChild('export', codec, schema, 'src', `import_${id}`, join(tmp, `stage-split-${id}`));
        await settle();
        console.log(`round ${round}, ${codec}: importUnit alone (load ${load()})`);
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
          await admin.query(`DROP TABLE ${t(name)}`);
        }
        for (const dir of [`stage-small-${id}`, `stage-e2e-${id}`, `stage-split-${id}`])
          rmSync(join(tmp, dir), { recursive: true, force: true });
      }
      for (const name of [`dst_pipe_${r}`, `dst_copy_from_${r}`]) {
        if ((await count(name)) !== rows) throw new Error(`${name} does not hold ${rows} rows`);
        equal[name] = await differing('src', name);
        await admin.query(`DROP TABLE ${t(name)}`);
      }
      all.push({ pipeMs, toFileMs, fromFileMs, ...(pgcopydbMs !== undefined ? { pgcopydbMs } : {}), results });
    }
    const loadEnd = load();

    const rps = (ms: number) => (rows * 1000) / ms;
    const title: Record<Codec, string> = {
      'pg-copy': 'pass-through (`pgCopyCodec()`)',
      arrow: 'Arrow (`arrowCodec()`)',
      ndjson: 'NDJSON',
    };
    /** Median seconds with the spread of the rounds. */
    const seconds = (xs: number[]) => spread(xs, secs);
    /** Median ratio baseline/ours over the rounds (each round's own baseline), with its spread. */
    const ratio = (ours: (x: Round) => number, base: (x: Round) => number) => {
      const s = stats(all.map((x) => base(x) / ours(x)));
      return { text: `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`, median: s.median };
    };
    const allEqual = (prefix: string) => {
      const names = Object.keys(equal).filter((k) => k.startsWith(prefix));
      const bad = names.reduce((n, k) => n + equal[k], 0);
      return bad === 0 ? 'equal' : `**${fmt(bad)} rows differ**`;
    };
    const pipe = (x: Round) => x.pipeMs;
    const lines: string[] = [];
    for (const codec of codecs) {
      const id = codec.replace(/\W/g, '_');
      const of = (k: 'e2e' | 'exp' | 'imp') => (x: Round) => x.results[codec][k].ms;
      const med = (k: 'e2e' | 'exp' | 'imp', f: (c: ChildResult) => number) =>
        stats(all.map((x) => f(x.results[codec][k]))).median;
      const row = (what: string, k: 'e2e' | 'exp' | 'imp', base: (x: Round) => number, target: string) =>
        `| ${title[codec]} | ${what} | ${seconds(all.map(of(k)))} | ${fmt(rps(med(k, (c) => c.ms)))} | ${med(k, (c) => c.cpuSec).toFixed(1)} | ${seconds(all.map(base))} | ${ratio(of(k), base).text} | ${fmt(Math.max(...all.map((x) => x.results[codec][k].peakRssMb)))} | ${(all[0].results[codec][k].bytes / 1048576).toFixed(1)} | ${target} |`;
      lines.push(row('end to end (runUnit)', 'e2e', pipe, allEqual(`e2e_${id}`)));
      lines.push(row('export alone (exportUnit)', 'exp', (x) => x.toFileMs, '–'));
      lines.push(row('import alone (importUnit)', 'imp', (x) => x.fromFileMs, allEqual(`import_${id}`)));
    }
    const peerLine =
      all[0].pgcopydbMs !== undefined
        ? `pgcopydb ${execSync('pgcopydb --version 2>&1', { encoding: 'utf8', shell: '/bin/bash' }).match(/pgcopydb version (\S+)/)?.[1] ?? ''} \`copy table-data --table-jobs 2\` into another database (same primary key) ${seconds(all.map((x) => x.pgcopydbMs!))} s (target ${allEqual('pgcopydb_')}, compared by count and md5 of the rows as text in key order).`
        : 'pgcopydb: not installed on this machine (`apt-get install pgcopydb`), not measured.';
    const vsPeer = (codec: Codec) =>
      all[0].pgcopydbMs !== undefined
        ? ratio(
            (x) => x.results[codec].e2e.ms,
            (x) => x.pgcopydbMs!,
          )
        : undefined;
    const policy = resolvePolicy(OVERRIDES);
    const md = [
      '## End to end: PostgreSQL → durable staging → PostgreSQL, per codec',
      '',
      `\`npm run bench -- e2e --rows ${rows} --rounds ${rounds}\` — ${fmt(rows)} rows (id bigint, name text, amount numeric(12,2), created_at timestamptz with`,
      `microseconds, tags jsonb) built with generate_series on the local PostgreSQL (${(await admin.query('SHOW server_version')).rows[0].server_version}),`,
      `${Object.keys(OVERRIDES).length ? `policy ${JSON.stringify(OVERRIDES)}, default otherwise` : 'the default policy'} (planned slices of ≤ ${fmt(policy.sliceMaxRows)} rows exported ${policy.exportConcurrency} at a time, each imported as it is exported — ADR 0018), filesystem staging, targets created`,
      'fresh (primary key on id, every target alike). Each pipeline phase runs in its own child process (its peak RSS and CPU are its own); the psql',
      `baselines (text format) run in the same benchmark on the same data, in every round. ${rounds} rounds: **median (min–max)**; a ratio is`,
      "baseline seconds / ours, taken per round against that round's baseline (1.00× = as fast as the baseline).",
      `Every target was checked to hold ${fmt(rows)} rows and compared with the source as text (\`SELECT t::text … EXCEPT ALL\` both ways).`,
      `Measured ${startedAt.slice(0, 16)}Z on this machine (Node ${process.version}, ${cpus().length} cores); 1-minute load average`,
      `**${loadStart} at the start and ${loadEnd} at the end**.`,
      '',
      `Baselines: pipe \`psql copy to stdout | psql copy from stdin\` ${seconds(all.map(pipe))} s (target ${allEqual('dst_pipe_')});`,
      `\`\\copy (…) to '/file'\` ${seconds(all.map((x) => x.toFileMs))} s; \`\\copy … from '/file'\` ${seconds(all.map((x) => x.fromFileMs))} s (target ${allEqual('dst_copy_from_')}); COPY text ${(statSync(file).size / 1048576).toFixed(1)} MiB.`,
      peerLine,
      '',
      '| codec | path | seconds | rows/s | Node CPU s | baseline seconds | ratio | peak RSS MiB | staged MiB | target vs source |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...lines,
      '',
      'Peak RSS of runUnit (highest of the rounds):',
      ...codecs.map((c) => {
        const big = Math.max(...all.map((x) => x.results[c].e2e.peakRssMb));
        const sm = Math.max(...all.map((x) => x.results[c].e2eSmall.peakRssMb));
        return `- ${title[c]}: ${fmt(sm)} MiB at ${fmt(small)} rows, ${fmt(big)} MiB at ${fmt(rows)} rows (target at ${fmt(small)}: ${allEqual(`e2e_small_${c.replace(/\W/g, '_')}`)}).`;
      }),
      '',
      'Targets of issue 26 (reached / not reached, medians as measured above):',
      ...codecs.map((c) => {
        const e2e = ratio((x) => x.results[c].e2e.ms, pipe);
        const exp = ratio(
          (x) => x.results[c].exp.ms,
          (x) => x.toFileMs,
        );
        const goal = c === 'pg-copy' ? 0.9 : 0.7;
        const peerR = vsPeer(c);
        const rss = Math.max(...all.map((x) => x.results[c].e2e.peakRssMb));
        const ok = (b: boolean) => (b ? 'reached' : '**not reached**');
        return `- ${title[c]}: end to end ${e2e.median.toFixed(2)}× the psql pipe (target ≥ ${goal}×: ${ok(e2e.median >= goal)})${c === 'pg-copy' ? (peerR ? `, ${peerR.median.toFixed(2)}× pgcopydb (target ≥ 1.0×: ${ok(peerR.median >= 1)})` : ', pgcopydb not measured') : ''}; export alone ${exp.median.toFixed(2)}× \`\\copy to\`${c === 'pg-copy' ? ` (target ≥ 0.8×: ${ok(exp.median >= 0.8)})` : ''}; peak RSS ${fmt(rss)} MiB (target < 300 MiB: ${ok(rss < 300)}); target equal to the source as text: ${allEqual(`e2e_${c.replace(/\W/g, '_')}`) === 'equal' ? 'yes' : '**no**'}.`;
      }),
    ].join('\n');
    console.log(`\n${md}\n`);
    if (write) writePerformanceSection('e2e', md);
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await peer?.end().catch(() => {});
    if (pgcopydb) await admin.query(`DROP DATABASE IF EXISTS "${peerDb}"`).catch(() => {});
    await admin.end();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [, , , phase, codec, schema, table, target, root] = process.argv;
  await child(phase as Phase, codec as Codec, schema, table, target, root);
}
