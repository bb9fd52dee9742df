/**
 * SIGKILL at every step of a CDC run while a writer inserts, updates (TOASTed values left unchanged, keys moved in
 * place) and deletes: during the snapshot, after staging, after the sink commit before the checkpoint, after the
 * checkpoint before the slot is confirmed. At quiescence the merged target equals the source as text both ways, the
 * change log holds every change once, and the slots retain (almost) no WAL. The snapshot commits before the streaming
 * rounds, so the kills after staging and after the sink commit hit streaming runs (a slot confirmed before the sink
 * committed loses changes here: checked by hand). Small by default; `SOAK=1` runs more rounds and more rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCdcSource } from '../../src/postgres/index.js';
import { createSourceTable, diffAsText, prng, writeOnce } from '../helpers/cdc.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';
import {
  EXIT,
  explain,
  killLeftovers,
  prepareWorker,
  SOAK,
  sleep,
  spawnWorker,
  type WorkerOutcome,
} from './harness.js';

const SCRIPT = fileURLToPath(new URL('./workers/cdc-crash-worker.ts', import.meta.url));
const ROWS = SOAK ? 20_000 : 1_500;
const ROUNDS = SOAK ? 5 : 1;
const POINTS = ['slice-staged', 'sink-returned', 'checkpoint-put', 'confirmed'] as const;

const cluster = useLogicalCluster();
let fsRoot: string;
let db: pg.Pool;

beforeAll(async () => {
  await prepareWorker(SCRIPT);
  fsRoot = mkdtempSync(join(tmpdir(), 'nucleus-cdc-crash-'));
});
afterAll(() => {
  killLeftovers();
  rmSync(fsRoot, { recursive: true, force: true });
});

const CONFIGS = [
  { name: 'merge', disposition: 'merge', slot: 'crm', endpoint: 'cdc-merge', schema: 'tgt' },
  { name: 'log', disposition: 'append', slot: 'crl', endpoint: 'cdc-log', schema: 'log' },
] as const;

function workerEnv(c: (typeof CONFIGS)[number], extra: Record<string, string | undefined> = {}) {
  return {
    DATABASE_URL: cluster.url,
    FS_ROOT: fsRoot,
    UNIT: 'app.items',
    PUBLICATION: 'pub_items',
    SLOT: c.slot,
    ENDPOINT: c.endpoint,
    TARGET_SCHEMA: c.schema,
    DISPOSITION: c.disposition,
    LEASE_TTL_MS: '1500',
    CRASH_AT: undefined,
    ...extra,
  };
}

/** Run workers until one commits (a crashed holder's lease expires first: lease_held is retried). */
async function commitOnce(c: (typeof CONFIGS)[number]): Promise<WorkerOutcome> {
  for (let i = 0; i < 40; i++) {
    const o = await spawnWorker(workerEnv(c), { script: SCRIPT }).done;
    if (o.code === EXIT.ok) return o;
    if (o.code === EXIT.leaseHeld || o.code === EXIT.retryable || o.code === EXIT.leaseLost) {
      await sleep(300);
      continue;
    }
    throw new Error(`run failed for good: ${explain(o)}`);
  }
  throw new Error('no run committed');
}

/** Spawn a worker that crashes at `point`; retried (after the lease expires) until it reaches the point. */
async function crashAt(c: (typeof CONFIGS)[number], point: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const o = await spawnWorker(workerEnv(c, { CRASH_AT: point }), { script: SCRIPT }).done;
    if (o.crashed) return;
    if (o.code === EXIT.ok || o.code === EXIT.leaseHeld || o.code === EXIT.retryable || o.code === EXIT.leaseLost) {
      await sleep(300); // the point was not reached (nothing new, or the lease): try again with more changes
      continue;
    }
    throw new Error(`worker failed instead of reaching ${point}: ${explain(o)}`);
  }
  throw new Error(`never reached ${point}`);
}

describe(`CDC under SIGKILL (${ROWS} rows, ${ROUNDS} round(s) per point)`, () => {
  it('every step killed while a writer changes the table: target = source as text, the log once per change, WAL released', async () => {
    db = cluster.pool();
    await db.query('CREATE SCHEMA app');
    await createSourceTable(db, 'app.items', 'pub_items', ROWS);

    const rnd = prng(11);
    const next = { id: 1_000_000 };
    let stop = false;
    let writes = 0;
    const writer = (async () => {
      const c = await db.connect();
      try {
        while (!stop) {
          writes += await writeOnce(c, 'app.items', rnd, next);
          await sleep(15);
        }
      } finally {
        c.release();
      }
    })();

    for (const c of CONFIGS) {
      // killed during the snapshot: the next run drops the half-made slot and snapshots again
      await crashAt(c, 'snapshot-batch');
      await crashAt(c, 'slice-staged');
      await commitOnce(c);
      // then every step of streaming runs
      for (let r = 0; r < ROUNDS; r++) {
        for (const point of POINTS) {
          await crashAt(c, point);
          // the killed run is finished by the next one (the point of the kill decides what it redoes)
          await commitOnce(c);
        }
      }
    }
    stop = true;
    await writer;
    expect(writes).toBeGreaterThan(0);

    // quiescence: each config drains until a run finds nothing new; its slot then holds back (almost) no WAL (the
    // runs' own writes to the KvStore and targets on this cluster come after their last read)
    for (const c of CONFIGS) {
      for (let i = 0; i < 30; i++) {
        const o = await commitOnce(c);
        if (o.result?.stats?.rowsExported === 0) break;
      }
      const probe = new PostgresCdcSource({
        connectionString: cluster.url,
        publication: 'pub_items',
        slot: c.slot,
        units: ['app.items'],
      });
      const [s] = await probe.status();
      await probe.close();
      expect(s.exists).toBe(true);
      expect(s.lagBytes, `${c.name}: WAL not confirmed`).toBeLessThan(1024 * 1024);
    }
    expect(await diffAsText(db, 'app.items', 'tgt.items')).toEqual({ missing: 0, extra: 0 });
    // the change log: each change of the stream exactly once (snapshot rows share the consistent point)
    const dup = await db.query(
      'SELECT count(*)::int AS n FROM (SELECT _lsn, _seq FROM log.items WHERE _commit_ts IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d',
    );
    expect(dup.rows[0].n).toBe(0);
    const snap = await db.query(
      'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM log.items WHERE _commit_ts IS NULL',
    );
    expect(snap.rows[0].n).toBe(snap.rows[0].d); // one snapshot, taken once
  }, 600_000);
});
