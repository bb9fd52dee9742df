/**
 * The crash rounds shared by the crash-points and crash-random suites: new source rows, a worker process that is
 * SIGKILLed (at a named point or after a random delay), the invariants, recovery until a run commits, the
 * invariants again — now with every source row loaded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import type { ObjectStore } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { seededRandom } from '../helpers/fault-proxy.js';
import { type PgTestEnv, usePostgres } from '../helpers/pg.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import {
  addSourceRows,
  checkInvariants,
  createTables,
  explain,
  killLeftovers,
  prepareWorker,
  recordFigures,
  runUntilCommitted,
  SOAK,
  spawnWorker,
  type WorkerOutcome,
} from './harness.js';
import { POINTS } from './workers/crash-worker-points.js';

export interface CrashFigures {
  kills: number;
  killsDuringRecovery: number;
  recoveryRuns: number;
  invariantChecks: number;
  rowsChecked: number;
  duplicatesFound: number;
  rounds: string[];
}

export interface CrashSetup {
  readonly pg: PgTestEnv;
  readonly disposition: 'append' | 'merge';
  readonly staging: 'fs' | 's3';
  readonly figures: CrashFigures;
  store(): ObjectStore;
  env(): Record<string, string>;
  readonly prefix: string;
  /** Another worker script (a sink variant) and its own invariant check; the PostgreSQL ones by default. */
  readonly script?: string;
  check?(label: string, complete: boolean): Promise<{ targetRows: number; distinct: number }>;
}

/** What a sink variant of the crash suite changes: its worker, extra environment, invariants, setup. */
export interface CrashVariant {
  script?: string;
  env?: () => Record<string, string>;
  check?: CrashSetup['check'];
  before?: () => Promise<void>;
}

/** Worker settings shared by every round: several slices per run, a short lease. */
export const COMMON_ENV = { SLICE_MAX_ROWS: '2500', CHUNK_SIZE: '500', LEASE_TTL_MS: '1500', CRASH_ROWS: '700' };

/**
 * Tests (inside a `describe`) of every named crash point, and of a kill of the process that resumes a crashed run.
 */
export function namedPointTests(s: CrashSetup): void {
  for (const point of POINTS.filter((p) => p !== 'resume')) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
  it(
    'a SIGKILL of the process that resumes a crashed run loses and duplicates nothing',
    () => resumeCrashRound(s),
    180_000,
  );
}

/** A test (after the rounds of `s`) that every slice they staged has the file extension `ext` of one codec. */
export function stagedCodecTest(s: CrashSetup, codec: string, ext: string): void {
  it(`the rounds staged ${codec} slices only (that codec really ran)`, async () => {
    const keys: string[] = [];
    for await (const info of s.store().list(`${s.prefix}/`)) keys.push(info.key);
    const slices = keys.filter((k) => /\/\d{6}\.[a-z.]+$/.test(k));
    expect(slices.length).toBeGreaterThan(10);
    expect(slices.filter((k) => !k.endsWith(ext))).toEqual([]);
  });
}

/**
 * Register hooks for one crash setup (tables, seed rows, staging location, worker bundle, figures) and return it.
 * Call at the top of a test file, after `usePostgres`.
 */
export function useCrashSetup(
  suite: string,
  pg: PgTestEnv,
  disposition: 'append' | 'merge',
  staging: 'fs' | 's3',
  variant: CrashVariant = {},
): CrashSetup {
  const fsRoot = mkdtempSync(join(tmpdir(), 'nucleus-crash-'));
  const prefix = staging === 's3' ? uniquePrefix('crash').replace(/\/$/, '') : 'ingestion';
  const figures: CrashFigures = {
    kills: 0,
    killsDuringRecovery: 0,
    recoveryRuns: 0,
    invariantChecks: 0,
    rowsChecked: 0,
    duplicatesFound: 0,
    rounds: [],
  };
  beforeAll(async () => {
    await prepareWorker(variant.script);
    await variant.before?.();
    await createTables(pg.pool, pg.schema, disposition);
    await addSourceRows(pg.pool, pg.schema, 8000);
  });
  afterAll(() => {
    killLeftovers();
    rmSync(fsRoot, { recursive: true, force: true });
    recordFigures(suite, { ...figures, staging, disposition });
  });
  return {
    pg,
    disposition,
    staging,
    figures,
    prefix,
    script: variant.script,
    check: variant.check,
    store: () =>
      staging === 's3'
        ? new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() })
        : new FileSystemObjectStore({ root: fsRoot }),
    env: () => {
      const base = {
        ...COMMON_ENV,
        DATABASE_URL: pg.url,
        PG_SCHEMA: pg.schema,
        DISPOSITION: disposition,
        ...variant.env?.(),
      };
      if (staging === 'fs') return { ...base, STAGING: 'fs', FS_ROOT: fsRoot };
      const t = s3Target();
      return {
        ...base,
        STAGING: 's3',
        STAGING_PREFIX: prefix,
        S3_ENDPOINT: t.endpoint,
        S3_REGION: t.region,
        S3_BUCKET: t.bucket,
        S3_ACCESS_KEY: t.local ? 'S3RVER' : (process.env.AWS_ACCESS_KEY_ID ?? ''),
        S3_SECRET_KEY: t.local ? 'S3RVER' : (process.env.AWS_SECRET_ACCESS_KEY ?? ''),
      };
    },
  };
}

/** Check the invariants and count them in the figures. */
export async function checkRound(s: CrashSetup, label: string, complete: boolean): Promise<void> {
  const r = s.check
    ? await s.check(label, complete)
    : await checkInvariants(s.pg.pool, s.pg.schema, { store: s.store(), prefix: s.prefix }, { complete, label });
  s.figures.invariantChecks++;
  s.figures.rowsChecked += r.targetRows;
  s.figures.duplicatesFound += r.targetRows - r.distinct;
}

/** A round killed at a named point: the kill must happen there. */
export async function namedCrashRound(s: CrashSetup, point: string, rows = 1500): Promise<void> {
  const label = `${s.staging}/${s.disposition}/${point}`;
  await addSourceRows(s.pg.pool, s.pg.schema, rows);
  const crashed = await spawnWorker({ ...s.env(), CRASH_AT: point }, { script: s.script }).done;
  expect(crashed.crashed, `${label}: the worker should have been killed at ${point}: ${explain(crashed)}`).toBe(true);
  expect(crashed.lines).toContain(`@@crash ${point}`);
  s.figures.kills++;
  await checkRound(s, `${label} after the kill`, false);
  await recover(s, label);
  s.figures.rounds.push(label);
}

/**
 * A round of several kills in a row, one process per point (each later process resumes the run the earlier one
 * left), then recovery: e.g. a kill after the first run-state save, then a kill of the resuming process.
 */
export async function chainedCrashRound(s: CrashSetup, points: string[]): Promise<void> {
  const label = `${s.staging}/${s.disposition}/${points.join('+')}`;
  await addSourceRows(s.pg.pool, s.pg.schema, 1500);
  for (const [n, point] of points.entries()) {
    let o: WorkerOutcome | undefined;
    let finished = false;
    for (let i = 0; i < 20 && !o?.crashed; i++) {
      o = await spawnWorker({ ...s.env(), CRASH_AT: point }, { script: s.script }).done;
      // A later point may legitimately be avoided: the resuming run finished on another path (e.g. it planned
      // again instead of re-creating its session). The invariants below still have to hold.
      if (!o.crashed && n > 0 && o.code === 0) {
        finished = true;
        break;
      }
      if (!o.crashed) {
        expect(o.code, `${label}: only lease_held may keep the worker from reaching ${point}: ${explain(o)}`).toBe(20);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    if (finished) {
      await checkRound(s, `${label}: the resumed run finished without reaching ${point}`, false);
      break;
    }
    expect(o?.lines, `${label}: ${explain(o!)}`).toContain(`@@crash ${point}`);
    s.figures.kills++;
    await checkRound(s, `${label} after the kill at ${point}`, false);
  }
  await recover(s, label);
  s.figures.rounds.push(label);
}

/** A round killed during a resume: a run left half-imported, then the process that resumes it is killed too. */
export async function resumeCrashRound(s: CrashSetup): Promise<void> {
  const label = `${s.staging}/${s.disposition}/resume`;
  await addSourceRows(s.pg.pool, s.pg.schema, 1500);
  const first = await spawnWorker({ ...s.env(), CRASH_AT: 'copy' }, { script: s.script }).done;
  expect(first.crashed, explain(first)).toBe(true);
  s.figures.kills++;
  let resumed: WorkerOutcome | undefined;
  for (let i = 0; i < 20 && !resumed?.crashed; i++) {
    resumed = await spawnWorker({ ...s.env(), CRASH_AT: 'resume' }, { script: s.script }).done;
    if (!resumed.crashed) {
      expect(
        resumed.code,
        `${label}: only lease_held may keep the resuming worker from starting: ${explain(resumed)}`,
      ).toBe(20);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  expect(resumed?.lines, explain(resumed!)).toContain('@@crash resume');
  s.figures.kills++;
  s.figures.killsDuringRecovery++;
  await checkRound(s, `${label} after the kill`, false);
  const outcomes = await recover(s, label);
  expect(outcomes.at(-1)!.result?.resumed, `${label}: the recovery should resume the staged run`).toBe(true);
  s.figures.rounds.push(label);
}

/**
 * How long a worker of a setup took when the kill came too late (it committed first): random kills are drawn within
 * that span, so they land inside runs however fast the code or the machine is (a fixed 1.5 s window let most kills
 * miss once the transcoded paths made runs short on a quiet machine).
 */
const runSpans = new WeakMap<CrashSetup, number>();

/**
 * A round killed at a random moment (`CRASH_AFTER_MS` after the worker's start, within the span a whole run of this
 * setup was seen to take); when `killRecovery`, the first recovery process is killed at a random moment as well.
 */
export async function randomCrashRound(
  s: CrashSetup,
  round: number,
  rnd: () => number,
  killRecovery: boolean,
): Promise<void> {
  const label = `${s.staging}/${s.disposition}/random#${round}`;
  await addSourceRows(s.pg.pool, s.pg.schema, 200 + Math.floor(rnd() * 1800));
  const span = runSpans.get(s) ?? 1500;
  const delay = Math.floor(rnd() * span);
  const started = performance.now();
  const first = await spawnWorker({ ...s.env(), CRASH_AFTER_MS: String(delay) }, { script: s.script }).done;
  if (first.crashed) s.figures.kills++;
  else {
    expect([0, 20], `${label}: ${explain(first)}`).toContain(first.code);
    if (first.code === 0) runSpans.set(s, Math.max(300, Math.round(performance.now() - started)));
  }
  await checkRound(s, `${label} after the kill (${delay} ms)`, false);
  await recover(s, label, killRecovery ? Math.floor(rnd() * span) : undefined);
  s.figures.rounds.push(label);
}

/** Run workers until one commits (optionally killing the first at a random time), then check completeness. */
async function recover(s: CrashSetup, label: string, killFirstAfterMs?: number): Promise<WorkerOutcome[]> {
  const outcomes = await runUntilCommitted(s.env(), {
    onAttempt: (i) => (i === 0 && killFirstAfterMs !== undefined ? { CRASH_AFTER_MS: String(killFirstAfterMs) } : {}),
    script: s.script,
  });
  for (const o of outcomes) {
    if (o.crashed) {
      s.figures.kills++;
      s.figures.killsDuringRecovery++;
    }
  }
  s.figures.recoveryRuns += outcomes.length;
  await checkRound(s, `${label} after recovery`, true);
  return outcomes;
}

/**
 * Register the random-kill rounds of one disposition (filesystem staging): 10 rounds, 250 under SOAK=1; every
 * third round also kills the first recovery process. The seed is printed in the suite name (replay: CRASH_SEED).
 */
export function describeRandomCrashes(disposition: 'append' | 'merge', opts: { overlap?: boolean } = {}): void {
  const rounds = SOAK ? 250 : 10;
  const suffix = opts.overlap ? '-overlap' : '';
  const pg = usePostgres(`rel_cr_${disposition}${suffix.replace('-', '_')}`);
  // overlapped runs (ADR 0018): export and import at once, so a kill often lands with slices committed mid-export
  const variant: CrashVariant = opts.overlap ? { env: () => ({ OVERLAP: '1', EXPORT_CONCURRENCY: '1' }) } : {};
  const setup = useCrashSetup(`crash-random-${disposition}${suffix}`, pg, disposition, 'fs', variant);
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000) + (disposition === 'merge' ? 1 : 0);
  describe(`crash at random moments, ${disposition}${opts.overlap ? ', overlapped' : ''} (${rounds} rounds, seed ${seed})`, () => {
    const rnd = seededRandom(seed);
    for (let i = 0; i < rounds; i++) {
      const alsoRecovery = i % 3 === 0;
      it(
        `round ${i + 1}: a random SIGKILL${alsoRecovery ? ' and a SIGKILL during recovery' : ''} lose and duplicate nothing`,
        () => randomCrashRound(setup, i + 1, rnd, alsoRecovery),
        120_000,
      );
    }
  });
}
