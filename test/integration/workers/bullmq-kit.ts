/**
 * Shared kit of the BullMQ scale-out tests: source/target tables per unit, the environment of the worker process,
 * parsing of the workers' `@@` lines, and the checks (rows in SQL both ways, source reads, lease history).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type pg from 'pg';
import { expect } from 'vitest';
import type { PgTestEnv } from '../../helpers/pg.js';
import { s3Target, uniquePrefix } from '../../helpers/s3.js';
import { ROOT } from '../../reliability/harness.js';

export const BULLMQ_WORKER = join(ROOT, 'test/integration/workers/bullmq-worker.ts');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface UnitSpec {
  unitId: string;
  source: string;
  target: string;
  disposition: 'append' | 'merge';
  rows: number;
}

/** Units `src_01…` in the test schema, with targets `dst_01…`; even ones merge (target with a key), odd ones append. */
export function unitSpecs(schema: string, n: number, rows: (i: number) => number): UnitSpec[] {
  return Array.from({ length: n }, (_, k) => {
    const i = String(k + 1).padStart(2, '0');
    return {
      unitId: `${schema}.src_${i}`,
      source: `"${schema}".src_${i}`,
      target: `${schema}.dst_${i}`,
      disposition: (k + 1) % 2 === 0 ? 'merge' : 'append',
      rows: rows(k),
    };
  });
}

/**
 * Create source tables with `rows` rows (id, payload, amount, at) and empty targets. Merge targets have a key and
 * hold stale copies of the first 50 ids (the merge must overwrite them); append targets have none, so a duplicate
 * would show.
 */
export async function createUnits(pool: pg.Pool, specs: UnitSpec[]): Promise<void> {
  for (const u of specs) {
    await pool.query(
      `CREATE TABLE ${u.source} (id bigint PRIMARY KEY, payload text, amount numeric(12,2), at timestamptz)`,
    );
    await pool.query(
      `INSERT INTO ${u.source} SELECT g, repeat(md5(g::text), 3), (g * 1.25)::numeric(12,2), timestamptz '2026-01-01' + g * interval '1 second'
       FROM generate_series(1, $1) g`,
      [u.rows],
    );
    const [s, t] = u.target.split('.');
    const key = u.disposition === 'merge' ? ' PRIMARY KEY' : ' NOT NULL';
    await pool.query(
      `CREATE TABLE "${s}"."${t}" (id bigint${key}, payload text, amount numeric(12,2), at timestamptz)`,
    );
    if (u.disposition === 'merge') {
      await pool.query(
        `INSERT INTO "${s}"."${t}" SELECT g, 'stale', 0, now() FROM generate_series(1, least(50, $1)) g`,
        [u.rows],
      );
    }
  }
  await pool.query(`ANALYZE`);
}

/** A queue of its own: random name and Redis key prefix. */
export function randomQueue(label: string): { queue: string; prefix: string } {
  const id = randomBytes(5).toString('hex');
  return { queue: `${label}-${id}`, prefix: `nucleus-test-${id}` };
}

/** Environment of one worker process. */
export function workerEnv(
  pg: PgTestEnv,
  specs: UnitSpec[],
  q: { queue: string; prefix: string },
  stagingPrefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const t = s3Target();
  return {
    REDIS_URL,
    QUEUE: q.queue,
    QUEUE_PREFIX: q.prefix,
    DATABASE_URL: pg.url,
    PG_SCHEMA: pg.schema,
    UNITS_JSON: JSON.stringify(Object.fromEntries(specs.map((u) => [u.unitId, u.target]))),
    S3_ENDPOINT: t.endpoint,
    S3_REGION: t.region,
    S3_BUCKET: t.bucket,
    S3_ACCESS_KEY: t.local ? 'S3RVER' : (process.env.AWS_ACCESS_KEY_ID ?? ''),
    S3_SECRET_KEY: t.local ? 'S3RVER' : (process.env.AWS_SECRET_ACCESS_KEY ?? ''),
    STAGING_PREFIX: stagingPrefix,
    ...extra,
  };
}

export const newStagingPrefix = () => uniquePrefix('bullmq').replace(/\/$/, '');

/** A worker process whose output lines can be read while it runs. */
export interface WorkerProc {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[];
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();

/** Start the worker script (through tsx) with `env` over ours. */
export function startWorker(name: string, env: Record<string, string>, script = BULLMQ_WORKER): WorkerProc {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env, WORKER_ID: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const proc: WorkerProc = {
    name,
    child,
    lines: [],
    stderr: '',
    exited: new Promise((res) =>
      child.on('close', (code, signal) => {
        live.delete(child);
        res({ code, signal });
      }),
    ),
  };
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      proc.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    proc.stderr = (proc.stderr + c).slice(-20_000);
  });
  return proc;
}

/** SIGKILL every worker still running (afterAll). */
export function killWorkers(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

/** Every `@@tag {json}` line of some workers, parsed. */
export function records<T = any>(workers: WorkerProc | WorkerProc[], tag: string): T[] {
  return (Array.isArray(workers) ? workers : [workers]).flatMap((w) =>
    w.lines.filter((l) => l.startsWith(`${tag} `)).map((l) => JSON.parse(l.slice(tag.length + 1)) as T),
  );
}

/** What a worker printed, for assertion messages. */
export function explainWorker(w: WorkerProc): string {
  return `--- ${w.name}\n${w.lines.filter((l) => !l.startsWith('@@lease') && !l.startsWith('@@read')).join('\n')}\n${w.stderr.slice(-3000)}`;
}

/** Poll `check` until it returns true (or fail after `timeoutMs`). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The target holds exactly the source's rows: compared as text in SQL, both ways, with multiplicity. */
export async function expectSameRows(pool: pg.Pool, u: UnitSpec): Promise<void> {
  const [s, t] = u.target.split('.');
  const target = `"${s}"."${t}"`;
  const cols = `id, payload, amount::text, at::text`;
  const missing = await pool.query(
    `SELECT count(*)::int AS n FROM (SELECT ${cols} FROM ${u.source} EXCEPT ALL SELECT ${cols} FROM ${target}) x`,
  );
  const extra = await pool.query(
    `SELECT count(*)::int AS n FROM (SELECT ${cols} FROM ${target} EXCEPT ALL SELECT ${cols} FROM ${u.source}) x`,
  );
  const counts = await pool.query(
    `SELECT (SELECT count(*) FROM ${u.source})::int AS src, (SELECT count(*) FROM ${target})::int AS dst,
            (SELECT count(DISTINCT id) FROM ${target})::int AS distinct_ids`,
  );
  expect({ unit: u.unitId, lost: missing.rows[0].n, duplicatedOrExtra: extra.rows[0].n }).toEqual({
    unit: u.unitId,
    lost: 0,
    duplicatedOrExtra: 0,
  });
  expect(counts.rows[0]).toEqual({ src: u.rows, dst: u.rows, distinct_ids: u.rows });
}

export interface LeaseRecord {
  key: string;
  version: number;
  state: 'held' | 'released';
  owner: string;
  runId: string;
  acquiredAt: string;
  expiresAt: string;
  writtenAt: string;
}

/**
 * No two workers held one unit's lease at once, from every lease write of every worker (killed ones included):
 * versions never repeat; a worker's hold starts only after the previous holder released it or its lease expired;
 * and once another worker took the lease, the earlier holder never wrote it again (it was fenced).
 * Returns the owners per key, in order.
 */
export function checkLeaseHistory(all: LeaseRecord[]): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  const byKey = new Map<string, LeaseRecord[]>();
  for (const r of all) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.version - b.version);
    const versions = list.map((r) => r.version);
    expect(new Set(versions).size, `${key}: a lease version was written twice`).toBe(versions.length);
    const seq: string[] = [list[0].owner];
    const ended = new Set<string>();
    const hold = (r: LeaseRecord) => `${r.owner}@${r.acquiredAt}`;
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      const cur = list[i];
      expect(ended.has(hold(cur)), `${key}: ${cur.owner} wrote version ${cur.version} of a hold that had ended`).toBe(
        false,
      );
      if (hold(cur) !== hold(prev)) {
        // A new hold: the previous one ended first (released, or expired before this one was acquired).
        const prevEnded = prev.state === 'released' || Date.parse(cur.acquiredAt) >= Date.parse(prev.expiresAt);
        expect(
          prevEnded,
          `${key}: ${cur.owner} acquired at ${cur.acquiredAt} while ${prev.owner} held it until ${prev.expiresAt}`,
        ).toBe(true);
        ended.add(hold(prev));
        if (cur.owner !== seq.at(-1)) seq.push(cur.owner);
      }
    }
    owners.set(key, seq);
  }
  return owners;
}
