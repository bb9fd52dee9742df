/**
 * The planned CDC snapshot (docs/decisions/0015-postgres-cdc.md, amendment "planned snapshots"): key-range slices read
 * concurrently inside the slot's exported snapshot, the `pg-copy` pass-through with the change fields computed by the
 * server, and a resumed run in a new source instance (another process: the snapshot is gone) declaring the recorded
 * plan void, emptying the session and snapshotting again — nothing of the dead snapshot reaches the target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  ndjsonCodec,
  ObjectStoreStagingProvider,
  type RecordCodec,
  runUnit,
  type SourceEndpoint,
} from '../../src/index.js';
import { PostgresCdcSource, PostgresSink, pgCopyCodec } from '../../src/postgres/index.js';
import { createSourceTable, diffAsText, prng, writeOnce } from '../helpers/cdc.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';

const cluster = useLogicalCluster();
const tmp = mkdtempSync(join(tmpdir(), 'nucleus-cdc-snapshot-'));
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

const ROWS = 3000;
const SLICE_ROWS = 400;

/** What a wrapped source saw: plans made, row reads of slices, pass-through reads of slices. */
interface Seen {
  plans: Array<{ snapshot: string; lsn: string; slices: number }>;
  rowReads: number;
  encodedReads: number;
}

/**
 * The source as the pipeline sees it, counting its calls; `failAt` makes the read of that slice fail (not retryable)
 * after the earlier slices were staged.
 */
function observed(source: PostgresCdcSource, seen: Seen, failAt?: number): SourceEndpoint<any> {
  const fail = () => new IngestError('source_failed', `injected failure at slice ${failAt}`, { retryable: false });
  return new Proxy(source, {
    get(t, p) {
      if (p === 'plan') {
        return async (req: any, ctx: any) => {
          const plan = await t.plan(req, ctx);
          if (plan) {
            const b = plan.slices[0].bounds as { snapshot: string; lsn: string };
            seen.plans.push({ snapshot: b.snapshot, lsn: b.lsn, slices: plan.slices.length });
          }
          return plan;
        };
      }
      if (p === 'read') {
        return (req: any, ctx: any) => {
          if (req.slice) seen.rowReads++;
          if (req.slice && req.slice.index === failAt) throw fail();
          return t.read(req, ctx);
        };
      }
      if (p === 'readEncoded') {
        return (codec: string, req: any, ctx: any) => {
          const bytes = t.readEncoded(codec, req, ctx);
          if (!bytes) return bytes;
          seen.encodedReads++;
          if (req.slice.index === failAt) {
            return (async function* () {
              yield* [];
              throw fail();
            })();
          }
          return bytes;
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  }) as unknown as SourceEndpoint<any>;
}

function setup(name: string, codec: RecordCodec, disposition: 'merge' | 'append' = 'merge') {
  const unitId = `app.${name}`;
  const options = {
    connectionString: cluster.url,
    publication: `pub_${name}`,
    slot: 'snap',
    units: [unitId],
    batchRows: 200,
    maxWaitMs: 5_000,
  };
  const sources: PostgresCdcSource[] = [];
  const newSource = () => {
    const s = new PostgresCdcSource(options);
    sources.push(s);
    closers.push(() => s.close());
    return s;
  };
  const sink = new PostgresSink({ connectionString: cluster.url, schema: disposition === 'merge' ? 'tgt' : 'log' });
  closers.push(() => sink.close());
  const kv = new MemoryKvStore();
  const staging = new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: join(tmp, name) }),
    codec,
  });
  const events: IngestionEvent[] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const logger = {
    debug() {},
    info: (m: string) => infos.push(m),
    warn: (m: string) => warnings.push(m),
    error() {},
  };
  const run = (source: SourceEndpoint<any>, extra: { mode?: 'full'; disposition?: 'replace' } = {}) =>
    runUnit({
      source,
      sink,
      staging,
      kv,
      unit: { vendor: 'postgres', endpointId: `cdc-${name}`, unitId },
      disposition,
      logger,
      ...extra,
      onEvent: (e) => events.push(e),
      policy: { sliceMaxRows: SLICE_ROWS, exportConcurrency: 3, retry: { maxAttempts: 2, baseDelayMs: 10 } },
    });
  return {
    unitId,
    newSource,
    run,
    events,
    warnings,
    infos,
    table: `app.${name}`,
    target: `${disposition === 'merge' ? 'tgt' : 'log'}.${name}`,
  };
}

/** A writer inserting, updating (keys moved, TOASTed values unchanged) and deleting until stopped. */
function startWriter(db: pg.Pool, table: string, seed: number) {
  const rnd = prng(seed);
  const next = { id: 100_000 };
  let writes = 0;
  let stop = false;
  const done = (async () => {
    const c = await db.connect();
    try {
      while (!stop) writes += await writeOnce(c, table, rnd, next);
    } finally {
      c.release();
    }
  })();
  return {
    get writes() {
      return writes;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

/** Run until a run finds nothing new. */
async function drain(run: () => Promise<{ stats: { rowsExported: number } }>) {
  for (let i = 0; i < 50; i++) if ((await run()).stats.rowsExported === 0) return;
  throw new Error('did not catch up');
}

describe('PostgresCdcSource: the planned snapshot (private cluster, wal_level = logical)', () => {
  let db: pg.Pool;
  beforeAll(async () => {
    db = cluster.pool();
    await db.query('CREATE SCHEMA app');
  });

  for (const [label, codec] of [
    ['pg-copy', () => pgCopyCodec()],
    ['ndjson', () => ndjsonCodec()],
  ] as const) {
    it(`${label}: slices in the exported snapshot while a writer changes the table, then stream: target = source`, async () => {
      const name = `snap_${label.replace('-', '_')}`;
      const t = setup(name, codec());
      await createSourceTable(db, t.table, `pub_${name}`, ROWS);
      const writer = startWriter(db, t.table, 5);
      const seen: Seen = { plans: [], rowReads: 0, encodedReads: 0 };
      const source = observed(t.newSource(), seen);

      const before = writer.writes;
      const first = await t.run(source);
      expect(writer.writes - before).toBeGreaterThan(0); // the writer ran during the snapshot
      // one plan of several key-range slices, each staged; never overlapped with the import
      expect(seen.plans).toHaveLength(1);
      expect(seen.plans[0].slices).toBeGreaterThan(1);
      expect(first.stats.slices).toBe(seen.plans[0].slices);
      const staged = t.events.filter((e) => e.type === 'slice.staged');
      expect(staged).toHaveLength(seen.plans[0].slices);
      expect(staged.every((e) => e.type === 'slice.staged' && e.slicesPlanned === seen.plans[0].slices)).toBe(true);
      expect(t.infos.filter((m) => m.includes('overlapped import'))).toEqual([]);
      expect(first.newCheckpoint).toMatchObject({ v: 1, lsn: seen.plans[0].lsn });
      if (label === 'pg-copy') {
        // the pass-through: every slice staged as COPY text, no row read
        expect(seen.encodedReads).toBe(seen.plans[0].slices);
        expect(seen.rowReads).toBe(0);
        expect(first.stagingHandles.every((h) => h.metadata?.codec === 'pg-copy')).toBe(true);
      } else {
        expect(seen.rowReads).toBe(seen.plans[0].slices);
      }
      // snapshot rows carry the consistent point
      const lsns = await db.query(`SELECT count(*)::int AS n FROM ${t.target}`);
      expect(lsns.rows[0].n).toBe(first.stats.rowsImported);

      await t.run(source);
      await writer.stop();
      await drain(() => t.run(source));
      expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
      const deleted = Number((await db.query(`SELECT count(*) AS n FROM ${t.target} WHERE id <= ${ROWS}`)).rows[0].n);
      expect(deleted).toBeLessThan(ROWS);
    });
  }

  it('pg-copy: the staged COPY text loads unchanged into a change log (append) and a resync (replace)', async () => {
    const log = setup('copy_log', pgCopyCodec(), 'append');
    await createSourceTable(db, log.table, 'pub_copy_log', 1000);
    const seen: Seen = { plans: [], rowReads: 0, encodedReads: 0 };
    const first = await log.run(observed(log.newSource(), seen));
    expect(seen.plans[0].slices).toBeGreaterThan(1);
    expect(seen).toMatchObject({ rowReads: 0, encodedReads: seen.plans[0].slices });
    expect(first.stats.rowsImported).toBe(1000);
    const rows = await db.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(_lsn)::text AS lo, max(_lsn)::text AS hi,
         bool_and(_op = 'insert' AND _seq = 0 AND _commit_ts IS NULL AND _unchanged IS NULL AND _old_key IS NULL) AS meta
       FROM ${log.target}`,
    );
    const lsn =
      BigInt(`0x${seen.plans[0].lsn.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${seen.plans[0].lsn.split('/')[1]}`);
    expect(rows.rows[0]).toEqual({ n: 1000, d: 1000, lo: String(lsn), hi: String(lsn), meta: true });

    // a resync of a merged target: mode full + replace snapshots again and replaces the target in one transaction
    const t = setup('copy_replace', pgCopyCodec());
    await createSourceTable(db, t.table, 'pub_copy_replace', 1000);
    const source = observed(t.newSource(), seen);
    await t.run(source);
    await db.query(`DELETE FROM ${t.table} WHERE id % 7 = 0`);
    await db.query(`INSERT INTO ${t.target} (id, name) VALUES (99999, 'only in the target')`);
    const resync = await t.run(source, { mode: 'full', disposition: 'replace' });
    expect(resync.stats.slices).toBeGreaterThan(1);
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
  });

  for (const [disposition, label, codec] of [
    ['merge', 'pg-copy', () => pgCopyCodec()],
    ['append', 'ndjson', () => ndjsonCodec()],
  ] as const) {
    it(`${disposition} (${label}): a run failed after some snapshot slices were staged is resumed by a new source instance, which voids the plan and snapshots again`, async () => {
      const name = `void_${disposition}`;
      const t = setup(name, codec(), disposition);
      await createSourceTable(db, t.table, `pub_${name}`, ROWS);
      const writer = startWriter(db, t.table, 9);
      const seen: Seen = { plans: [], rowReads: 0, encodedReads: 0 };

      // the first process: slices 0–2 are staged (3 at a time), slice 3 fails for good
      const first = t.newSource();
      const err = await t.run(observed(first, seen, 3)).catch((e) => e);
      expect(IngestError.is(err)).toBe(true);
      expect(err.message).toContain('injected failure');
      expect(seen.plans).toHaveLength(1);
      expect(seen.plans[0].slices).toBeGreaterThan(3);
      const stagedBefore = t.events.filter((e) => e.type === 'slice.staged').length;
      expect(stagedBefore).toBeGreaterThan(0);
      expect(t.events.some((e) => e.type === 'import.progress')).toBe(false); // nothing reached the sink
      await first.close(); // the process is gone, and its exported snapshot with it

      // another process resumes the run: its source does not hold the snapshot, so the plan is void
      const second = t.newSource();
      const resumed = await t.run(observed(second, seen));
      expect(resumed.resumed).toBe(true);
      expect(t.warnings.some((w) => w.includes('the recorded plan is void'))).toBe(true);
      expect(seen.plans).toHaveLength(2);
      expect(seen.plans[1].snapshot).not.toBe(seen.plans[0].snapshot);
      expect(seen.plans[1].slices).toBeGreaterThan(1);
      expect(resumed.newCheckpoint).toMatchObject({ v: 1, lsn: seen.plans[1].lsn });
      expect(resumed.stats.slices).toBe(seen.plans[1].slices);

      await writer.stop();
      await drain(() => t.run(second));
      if (disposition === 'merge') {
        expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
      } else {
        // the change log: one snapshot (the second), each row once; nothing of the dead snapshot
        const snap = await db.query(
          `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, count(DISTINCT _lsn)::int AS l FROM ${t.target} WHERE _commit_ts IS NULL`,
        );
        expect(snap.rows[0].n).toBe(snap.rows[0].d);
        expect(snap.rows[0].l).toBe(1);
        expect(snap.rows[0].n).toBe(resumed.stats.rowsImported);
        const dup = await db.query(
          `SELECT count(*)::int AS n FROM (SELECT _lsn, _seq FROM ${t.target} WHERE _commit_ts IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`,
        );
        expect(dup.rows[0].n).toBe(0);
        // every row of the source is in the log, its last change not a delete: nothing lost
        const live = await db.query(
          `SELECT count(*)::int AS n FROM (SELECT id FROM ${t.table} EXCEPT SELECT id FROM (
             SELECT DISTINCT ON (id) id, _op FROM ${t.target} ORDER BY id, _lsn DESC, _seq DESC) l WHERE _op <> 'delete') d`,
        );
        expect(live.rows[0].n).toBe(0);
      }
    });
  }
});
