/**
 * Concurrent workers: four processes start the same unit at the same moment (exactly one runs, the others fail
 * fast with `lease_held`), and a lease holder stopped with SIGSTOP past its lease TTL is taken over by another
 * worker; when it continues (SIGCONT) its late writes are fenced off (`lease_lost`). Checkpoint versions strictly
 * increase; no row is lost or duplicated.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pgLib from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresKvStore } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { checkRound, useCrashSetup } from './crash-suite.js';
import {
  addSourceRows,
  EXIT,
  explain,
  recordFigures,
  runUntilCommitted,
  sleep,
  spawnWorker,
  type WorkerOutcome,
} from './harness.js';

const pg = usePostgres('rel_conc');
const s = useCrashSetup('concurrent-workers-rounds', pg, 'append', 'fs');
const figures = {
  concurrentStarts: 0,
  leaseHeld: 0,
  pauses: 0,
  fencedLateCommits: 0,
  takerBlockedByPausedHolder: 0,
  checkpointVersions: [] as number[],
};
afterAll(() => recordFigures('concurrent-workers', figures));
const TTL = 1000;

function recordVersions(...outcomes: WorkerOutcome[]): void {
  for (const o of outcomes) figures.checkpointVersions.push(...o.checkpoints);
  // Every checkpoint write of every process, in the order the rounds ran: strictly increasing.
  for (let i = 1; i < figures.checkpointVersions.length; i++) {
    expect(
      figures.checkpointVersions[i],
      `checkpoint versions ${figures.checkpointVersions.join(', ')}`,
    ).toBeGreaterThan(figures.checkpointVersions[i - 1]);
  }
  recordFigures('concurrent-workers', figures);
}

describe('concurrent workers', () => {
  it('workers that start together can all migrate the KvStore table (PostgresKvStore.migrate is concurrency-safe)', async () => {
    // Every worker process calls migrate() on start; workers started at once race on the catalog.
    for (let round = 0; round < 40; round++) {
      const schema = `${pg.schema}_m${round}`;
      await pg.query(`CREATE SCHEMA "${schema}"`);
      try {
        const dbs = Array.from(
          { length: 8 },
          () =>
            new Kysely<any>({
              dialect: new PostgresDialect({ pool: new pgLib.Pool({ connectionString: pg.url, max: 1 }) }),
            }),
        );
        try {
          // Connect first, so the CREATE statements reach the server together.
          await Promise.all(dbs.map((db) => sql`SELECT 1`.execute(db)));
          const results = await Promise.allSettled(dbs.map((db) => new PostgresKvStore({ db, schema }).migrate()));
          const failed = results
            .filter((r) => r.status === 'rejected')
            .map((r) => String((r as PromiseRejectedResult).reason));
          expect(failed, `round ${round}: concurrent migrate() calls failed`).toEqual([]);
        } finally {
          await Promise.all(dbs.map((db) => db.destroy()));
        }
      } finally {
        await pg.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    }
  }, 60_000);

  it('four processes start the same unit at once: exactly one runs, three fail fast with lease_held', async () => {
    await addSourceRows(pg.pool, pg.schema, 3000);
    const workers = Array.from({ length: 4 }, (_, i) =>
      spawnWorker({ ...s.env(), WAIT_GO: '1', WORKER_ID: `w${i}` }, { stdin: true }),
    );
    await Promise.all(workers.map((w) => w.waitFor('@@ready', 90_000)));
    for (const w of workers) w.child.stdin!.write('go\n');
    const outcomes = await Promise.all(workers.map((w) => w.done));
    figures.concurrentStarts += 4;
    const codes = outcomes.map((o) => o.code).sort();
    expect(codes, outcomes.map(explain).join('\n----\n')).toEqual([
      EXIT.ok,
      EXIT.leaseHeld,
      EXIT.leaseHeld,
      EXIT.leaseHeld,
    ]);
    for (const o of outcomes.filter((x) => x.code === EXIT.leaseHeld)) {
      expect(o.result?.code).toBe('lease_held');
      expect(
        o.lines.some((l) => l.startsWith('@@point state-')),
        'a worker without the lease must not touch the run state',
      ).toBe(false);
      expect(o.checkpoints).toEqual([]);
      figures.leaseHeld++;
    }
    recordVersions(...outcomes);
    await checkRound(s, 'four at once', true);
  }, 180_000);

  for (const [point, n, what] of [
    ['slice-staged', 1, 'during the export (between two slices)'],
    ['copy', 1, 'in the middle of a COPY (slice transaction open)'],
    ['slice-committed', 1, 'after one slice committed'],
    ['state-imported', 1, 'after the sink committed, before the checkpoint'],
  ] as const) {
    it(`a holder paused ${what} past its lease TTL is taken over; its late commit is fenced off`, async () => {
      await addSourceRows(pg.pool, pg.schema, 3000);
      const env = { ...s.env(), LEASE_TTL_MS: String(TTL) };
      const a = spawnWorker({ ...env, PAUSE_AT: point, PAUSE_N: String(n), WORKER_ID: 'paused' });
      await a.waitFor(`@@paused ${point}`, 90_000);
      figures.pauses++;
      await sleep(TTL + 300);
      // Another worker takes the unit over once the paused holder's lease has expired.
      const b = spawnWorker({ ...env, WORKER_ID: 'taker' });
      // A holder paused inside a slice transaction holds that slice's ledger row lock, so the taker may wait for
      // it: give the taker a while to finish on its own, then let the paused holder continue either way.
      const bFirst = await Promise.race([
        b.done,
        b
          .waitFor('@@point state-importing', 90_000)
          .then(() => sleep(5_000))
          .then(
            () => undefined,
            () => undefined,
          ),
      ]);
      // Fencing down to staging: the manifests as the taker left them, before the paused holder continues.
      const manifests =
        bFirst?.code === EXIT.ok ? await readManifests((env as Record<string, string>).FS_ROOT) : undefined;
      a.child.kill('SIGCONT');
      const aOut = await a.done;
      if (manifests) {
        expect(
          await readManifests((env as Record<string, string>).FS_ROOT),
          'the fenced holder must not rewrite a manifest after the taker claimed the session',
        ).toEqual(manifests);
      }
      const bOut = bFirst ?? (await b.done);
      figures.takerBlockedByPausedHolder += bFirst ? 0 : 1;
      let taker = bOut;
      if (bOut.code !== EXIT.ok) {
        // The taker may itself have been fenced by the paused worker's last renewal: recover, then check.
        const more = await runUntilCommitted(env);
        taker = more.at(-1)!;
        recordVersions(aOut, bOut, ...more);
      } else recordVersions(aOut, bOut);
      expect(taker.code, explain(taker)).toBe(EXIT.ok);
      expect(aOut.code, `the paused holder must be fenced off:\n${explain(aOut)}`).toBe(EXIT.leaseLost);
      expect(aOut.result?.code).toBe('lease_lost');
      expect(aOut.checkpoints, 'the fenced holder must not have written a checkpoint').toEqual([]);
      figures.fencedLateCommits++;
      recordFigures('concurrent-workers', figures);
      await checkRound(s, `paused at ${point}`, true);
    }, 180_000);
  }
});

/** Every staging manifest under `root`, by path. */
async function readManifests(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name === 'manifest.json') {
      const path = join(e.parentPath, e.name);
      out[path] = await readFile(path, 'utf8');
    }
  }
  return out;
}
