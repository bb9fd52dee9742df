/**
 * Shared kit of the reliability suites: spawn the crash worker as a child process, check the delivery invariants
 * against PostgreSQL and the staging store, and record the figures of the run under `.tmp/reliability/`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { expect } from 'vitest';
import type { ObjectStore } from '../../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const CRASH_WORKER = join(here, 'workers/crash-worker.ts');
export const SOAK = process.env.SOAK === '1';

/** Exit codes of the crash worker. */
export const EXIT = { ok: 0, leaseHeld: 20, leaseLost: 21, retryable: 22, fatal: 23 } as const;

/** Sequence numbers start here so that every one has the same number of digits. */
export const SEQ_BASE = 1_000_000;

export interface WorkerOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
  /** The `@@result` object, when the worker got that far. */
  result?: {
    ok: boolean;
    code?: string | null;
    retryable?: boolean | null;
    message?: string;
    runId?: string;
    resumed?: boolean;
    stats?: any;
  };
  /** Checkpoint versions this worker wrote. */
  checkpoints: number[];
  crashed: boolean;
}

export interface SpawnedWorker {
  child: ChildProcess;
  done: Promise<WorkerOutcome>;
  /** Resolves when a stdout line starting with `prefix` appears (rejects if the worker exits first). */
  waitFor(prefix: string, timeoutMs?: number): Promise<string>;
}

const live = new Set<ChildProcess>();
const bundles = new Map<string, string | null>();

/** SIGKILL every child still running and remove this process's worker bundles (for afterAll). */
export function killLeftovers(): void {
  for (const file of bundles.values()) if (file) rmSync(file, { force: true });
  bundles.clear();
  for (const c of live) {
    try {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/**
 * Prepare a TypeScript worker script for spawnWorker. The script is bundled once per test process with esbuild
 * (a dependency of tsx) into `.tmp/reliability/bundles/`, which halves each child's start-up CPU on this 2-core
 * machine; when bundling is not possible the child runs the script through `--import tsx`.
 */
export async function prepareWorker(script: string = CRASH_WORKER): Promise<void> {
  if (!bundles.has(script)) {
    let out: string | null = null;
    try {
      const esbuild = await import('esbuild');
      const file = join(ROOT, '.tmp/reliability/bundles', `${basename(script, '.ts')}-${process.pid}.mjs`);
      await esbuild.build({
        entryPoints: [script],
        bundle: true,
        platform: 'node',
        format: 'esm',
        // Dependencies go into the bundle too (one file to load); the AWS SDK stays outside (loaded lazily).
        external: ['@aws-sdk/*', 'pg-native'],
        banner: {
          js: "import { createRequire as __nucleusRequire } from 'node:module'; const require = __nucleusRequire(import.meta.url);",
        },
        outfile: file,
        logLevel: 'silent',
      });
      out = file;
    } catch {
      out = null;
    }
    bundles.set(script, out);
  }
}

/** Start a worker script, the given environment on top of ours, and optional extra node flags. */
export function spawnWorker(
  env: Record<string, string | undefined>,
  opts: { script?: string; nodeArgs?: string[]; stdin?: boolean } = {},
): SpawnedWorker {
  const args = bundles.get(opts.script ?? CRASH_WORKER);
  const runArgs = args
    ? ['--openssl-legacy-provider', args]
    : ['--openssl-legacy-provider', '--import', 'tsx', opts.script ?? CRASH_WORKER];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...runArgs], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const waiters: Array<{ prefix: string; resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  let buf = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (line.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      i = buf.indexOf('\n');
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    stderr += c;
  });
  const done = new Promise<WorkerOutcome>((res) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      if (buf) lines.push(buf);
      for (const w of waiters.splice(0))
        w.reject(new Error(`worker exited (${code ?? signal}) before "${w.prefix}"\n${lines.join('\n')}\n${stderr}`));
      const resLine = lines.find((l) => l.startsWith('@@result '));
      const checkpoints = lines
        .filter((l) => l.startsWith('@@checkpoint '))
        .map((l) => JSON.parse(l.slice(13)).version as number);
      res({
        code,
        signal,
        lines,
        stderr,
        ...(resLine ? { result: JSON.parse(resLine.slice(9)) } : {}),
        checkpoints,
        crashed: signal === 'SIGKILL',
      });
    });
  });
  return {
    child,
    done,
    waitFor(prefix, timeoutMs = 60_000) {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`timed out waiting for "${prefix}"\n${lines.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          prefix,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
          reject: (e) => {
            clearTimeout(t);
            reject(e);
          },
        });
      });
    },
  };
}

/** Describe an outcome for assertion messages. */
export function explain(o: WorkerOutcome): string {
  return `exit ${o.code ?? o.signal}\n${o.lines.filter((l) => !l.startsWith('@@point state')).join('\n')}\n${o.stderr.slice(-4000)}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run the worker (no crash) until it commits: a `lease_held` (the crashed holder's lease has not expired yet) or
 * a retryable failure is retried. Returns every outcome; the last one committed.
 */
export async function runUntilCommitted(
  env: Record<string, string | undefined>,
  opts: { maxAttempts?: number; onAttempt?: (i: number) => Record<string, string | undefined>; script?: string } = {},
): Promise<WorkerOutcome[]> {
  const outcomes: WorkerOutcome[] = [];
  for (let i = 0; i < (opts.maxAttempts ?? 30); i++) {
    const extra = opts.onAttempt?.(i) ?? {};
    const o = await spawnWorker(
      {
        CRASH_AT: undefined,
        CRASH_AFTER_MS: undefined,
        PAUSE_AT: undefined,
        ...env,
        ...extra,
      },
      { script: opts.script },
    ).done;
    outcomes.push(o);
    if (o.code === EXIT.ok) return outcomes;
    if (o.crashed) continue; // a kill during recovery (asked for by onAttempt)
    if (o.code === EXIT.leaseHeld) {
      await sleep(300);
      continue;
    }
    if (o.code === EXIT.retryable || o.code === EXIT.leaseLost) continue;
    throw new Error(`recovery run failed for good: ${explain(o)}`);
  }
  throw new Error(`recovery did not commit within ${opts.maxAttempts ?? 30} attempts: ${explain(outcomes.at(-1)!)}`);
}

/** Insert `n` new sequence numbers into `<schema>.src`; returns the highest. */
export async function addSourceRows(pool: pg.Pool, schema: string, n: number): Promise<number> {
  const r = await pool.query(
    `INSERT INTO "${schema}".src (seq, payload)
     SELECT s, repeat(md5(s::text), 2) FROM generate_series(
       (SELECT coalesce(max(seq), ${SEQ_BASE}) + 1 FROM "${schema}".src),
       (SELECT coalesce(max(seq), ${SEQ_BASE}) + $1 FROM "${schema}".src)) s
     RETURNING seq`,
    [n],
  );
  return r.rowCount ?? 0;
}

/** Create the source table, and the target (with a primary key for `merge`; none for `append`, so duplicates show). */
export async function createTables(pool: pg.Pool, schema: string, disposition: 'append' | 'merge'): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS "${schema}".src (seq bigint PRIMARY KEY, payload text)`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS "${schema}".dst (seq bigint NOT NULL${disposition === 'merge' ? ' PRIMARY KEY' : ''}, payload text)`,
  );
}

export interface InvariantReport {
  sourceRows: number;
  targetRows: number;
  distinct: number;
  checkpoint: number | null;
  ledgerRuns: number;
  ledgerSlices: number;
}

/**
 * The delivery invariants, checked after every round (crashed or not):
 * 1. no duplicate: `count(*) = count(distinct seq)` in the target, and the ledger accounts for each row once;
 * 2. the checkpoint never passed an unloaded row: every source row ≤ checkpoint is in the target;
 * 3. no slice of a session without `_SUCCESS` was consumed: every run in the ledger has `_SUCCESS` in staging, and
 *    each ledger slice holds as many rows as its manifest entry;
 * and, when `complete`: every source row is in the target (after a committed run with no concurrent inserts).
 */
export async function checkInvariants(
  pool: pg.Pool,
  schema: string,
  staging: { store: ObjectStore; prefix?: string; endpointId?: string },
  opts: { complete: boolean; label: string },
): Promise<InvariantReport> {
  const s = `"${schema}"`;
  // One snapshot for every read: the server finishes a statement a SIGKILLed worker had already sent (a slice's
  // COMMIT lands after the kill), so reads taken one by one could see the ledger row of a slice and not its rows.
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const report = await checkInSnapshot(client, s, schema, staging, opts);
    await client.query('COMMIT');
    return report;
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

async function checkInSnapshot(
  pool: pg.PoolClient,
  s: string,
  schema: string,
  staging: { store: ObjectStore; prefix?: string; endpointId?: string },
  opts: { complete: boolean; label: string },
): Promise<InvariantReport> {
  const t = (await pool.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM ${s}.dst`)).rows[0];
  const src = (await pool.query(`SELECT count(*)::int AS n FROM ${s}.src`)).rows[0].n as number;
  expect(t.n, `${opts.label}: duplicate sequence numbers in the target`).toBe(t.d);
  const extra = (
    await pool.query(
      `SELECT count(*)::int AS n FROM ${s}.dst d WHERE NOT EXISTS (SELECT 1 FROM ${s}.src x WHERE x.seq = d.seq)`,
    )
  ).rows[0].n;
  expect(extra, `${opts.label}: target rows that are not in the source`).toBe(0);

  // The KV table appears with the first worker that got as far as migrating it (a very early kill may precede it).
  const hasKv = (await pool.query(`SELECT to_regclass($1) AS r`, [`${s}.kv_entries`])).rows[0].r;
  const cpRow = hasKv
    ? (
        await pool.query(`SELECT value FROM ${s}.kv_entries WHERE key = $1`, [
          `ingest::postgres::endpoint::${staging.endpointId ?? 'crash-src'}::unit::${schema}.src::sink::crash-dst`,
        ])
      ).rows[0]
    : undefined;
  const cp = cpRow?.value?.values?.[0] != null ? Number(cpRow.value.values[0]) : null;
  if (cp !== null) {
    const missing = (
      await pool.query(
        `SELECT count(*)::int AS n FROM ${s}.src x WHERE x.seq <= $1 AND NOT EXISTS (SELECT 1 FROM ${s}.dst d WHERE d.seq = x.seq)`,
        [cp],
      )
    ).rows[0].n;
    expect(missing, `${opts.label}: checkpoint ${cp} is past ${missing} rows that are not in the target`).toBe(0);
  }

  const hasLedger = (await pool.query(`SELECT to_regclass($1) AS r`, [`${s}._nucleus_ingest_ledger`])).rows[0].r;
  const ledger = hasLedger
    ? (await pool.query(`SELECT run_id, slice, rows::int AS rows FROM ${s}._nucleus_ingest_ledger`)).rows
    : [];
  const ledgerRows = ledger.reduce((n: number, r: { rows: number }) => n + r.rows, 0);
  expect(ledgerRows, `${opts.label}: the ledger accounts for ${ledgerRows} rows but the target holds ${t.n}`).toBe(t.n);
  const runs = [...new Set(ledger.map((r: { run_id: string }) => r.run_id))] as string[];
  const prefix = staging.prefix ?? 'ingestion';
  // an overlapped run (ADR 0018) killed while it streams has slices in the ledger before its session is sealed
  const cpKey = `ingest::postgres::endpoint::${staging.endpointId ?? 'crash-src'}::unit::${schema}.src::sink::crash-dst`;
  const runState = hasKv
    ? ((await pool.query(`SELECT value FROM ${s}.kv_entries WHERE key = $1`, [`${cpKey}::run`])).rows[0]?.value as
        | { runId?: string; phase?: string }
        | undefined)
    : undefined;
  for (const runId of runs) {
    const dir = `${prefix}/default/${staging.endpointId ?? 'crash-src'}/${runId}`;
    const success = await staging.store.head(`${dir}/_SUCCESS`);
    if (!success && runState?.runId === runId && runState.phase === 'streaming') continue;
    expect(success, `${opts.label}: run ${runId} was imported but its session has no _SUCCESS`).toBeDefined();
    const chunks: Uint8Array[] = [];
    for await (const c of await staging.store.get(`${dir}/manifest.json`)) chunks.push(c);
    const manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      slices: Array<{ index: number; rows: number }>;
    };
    for (const l of ledger.filter((r: { run_id: string }) => r.run_id === runId)) {
      const m = manifest.slices.find((x) => x.index === l.slice);
      expect(m, `${opts.label}: ledger slice ${l.slice} of run ${runId} is not in its manifest`).toBeDefined();
      expect(l.rows, `${opts.label}: ledger slice ${l.slice} of run ${runId} rows vs manifest`).toBe(m!.rows);
    }
  }
  if (opts.complete)
    expect(t.n, `${opts.label}: after a committed run the target must hold every source row`).toBe(src);
  return {
    sourceRows: src,
    targetRows: t.n,
    distinct: t.d,
    checkpoint: cp,
    ledgerRuns: runs.length,
    ledgerSlices: ledger.length,
  };
}

/** Figures of one suite, written to `.tmp/reliability/<suite>.json` (see test/reliability/update-guarantees.ts). */
export function recordFigures(suite: string, figures: Record<string, unknown>): void {
  // a variant run with another staging codec (CODEC=pg-copy, see *-pass-through.test.ts) keeps its own figures
  const file = join(ROOT, `.tmp/reliability/${suite}${process.env.CODEC ? `-${process.env.CODEC}` : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ suite, ...figures, soak: SOAK, at: new Date().toISOString() }, null, 2)}\n`);
}
