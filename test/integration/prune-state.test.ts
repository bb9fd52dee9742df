/**
 * Retention (ADR 0017): N incremental runs of one unit into PostgreSQL (a receipt and ledger rows per run), then
 * `pruneState`: the KvStore and the ledger hold a bounded number of entries, and run-id reuse stays safe inside the
 * window. N = 1,000 with PRUNE_RUNS=1000 (the figure in the report); 150 by default to keep the suite quick.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { checkpointKey, IngestError, MemoryStagingProvider, pruneState, type Row, runUnit } from '../../src/index.js';
import { runStateKey } from '../../src/pipeline/keys.js';
import { PostgresKvStore, PostgresSink } from '../../src/postgres/index.js';
import { MemorySource } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('prune');
const RUNS = Number(process.env.PRUNE_RUNS ?? 150);

describe('pruneState', () => {
  it(`${RUNS} incremental runs, then prune: receipts and ledger rows expire together, entry counts stay bounded`, async () => {
    const pool = env.newPool({ max: 2 });
    const kv = new PostgresKvStore({
      db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }),
      schema: env.schema,
    });
    await kv.migrate();
    const sink = new PostgresSink({ pool, schema: env.schema });
    const rows: Row[] = [];
    const source = new MemorySource({ units: { events: { rows, cursorField: 'id' } } });
    const unit = { vendor: 'memory', endpointId: 'mem', unitId: 'events', sinkId: 'wh' };
    const base = {
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit,
      policy: { retry: { maxAttempts: 1 }, keepStaging: false },
    };
    const started = Date.now();
    let last = '';
    for (let i = 1; i <= RUNS; i++) {
      rows.push({ id: i, at: `t${i}` });
      source.setRows('events', rows);
      last = (await runUnit({ ...base, runId: `run-${String(i).padStart(5, '0')}` })).runId;
    }
    const runsMs = Date.now() - started;
    const count = async () => {
      let entries = 0;
      for await (const _ of kv.list({ namespace: 'ingestion', scopeId: 'default' })) entries++;
      const ledger = await pool.query(`SELECT count(*)::int AS n FROM "${env.schema}"._nucleus_ingest_ledger`);
      return { entries, ledger: ledger.rows[0].n as number };
    };
    const before = await count();
    expect(before.entries).toBe(RUNS + 3); // a receipt per run + checkpoint, run state, lease
    expect(before.ledger).toBe(RUNS);
    const target = await pool.query(`SELECT count(*)::int AS n FROM "${env.schema}".events`);
    expect(target.rows[0].n).toBe(RUNS);

    // inside the window nothing expires
    const none = await pruneState({ kv, sinks: sink, olderThan: 3600_000 });
    expect(none).toMatchObject({ receiptsDeleted: 0, receiptsKept: RUNS, ledgerRunsForgotten: 0 });

    const pruneStarted = Date.now();
    const report = await pruneState({ kv, sinks: { wh: sink }, olderThan: new Date(Date.now() + 1) });
    const pruneMs = Date.now() - pruneStarted;
    const after = await count();
    // kept: checkpoint, run state, lease, and the receipt of the run the run state names
    expect(after).toEqual({ entries: 4, ledger: 1 });
    expect(report).toMatchObject({ receiptsDeleted: RUNS - 1, ledgerRunsForgotten: RUNS - 1, receiptsKept: 1 });
    console.log(
      `[prune] ${RUNS} incremental runs in ${runsMs} ms; before prune: ${before.entries} KvStore entries, ${before.ledger} ledger rows; after: ${after.entries} entries, ${after.ledger} ledger rows (prune ${pruneMs} ms)`,
    );

    // the unit's current run still repeats; a pruned id inside its window was refused, past it runs afresh
    await expect(runUnit({ ...base, runId: last })).resolves.toMatchObject({ repeated: true });
    const cp = checkpointKey(unit);
    expect((await kv.get(runStateKey(cp)))?.value).toMatchObject({ runId: last, phase: 'committed' });
    rows.push({ id: RUNS + 1, at: 'late' });
    source.setRows('events', rows);
    const reused = await runUnit({ ...base, runId: 'run-00001' });
    expect(reused.stats.rowsImported).toBe(1);
    const total = await pool.query(`SELECT count(*)::int AS n FROM "${env.schema}".events`);
    expect(total.rows[0].n).toBe(RUNS + 1);
    await sink.close();
  }, 600_000);

  it('a unit whose sink is not given keeps its receipts; a reused id inside the window is refused', async () => {
    const pool = env.newPool({ max: 2 });
    const kv = new PostgresKvStore({
      db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }),
      schema: env.schema,
      table: 'kv_two',
    });
    await kv.migrate();
    const sink = new PostgresSink({ pool, schema: env.schema });
    const rows: Row[] = [{ id: 1 }];
    const source = new MemorySource({ units: { other: { rows, cursorField: 'id' } } });
    const base = {
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'mem', unitId: 'other', sinkId: 'x' },
    };
    await runUnit({ ...base, runId: 'a1' });
    rows.push({ id: 2 });
    await runUnit({ ...base, runId: 'a2' });
    const kept = await pruneState({ kv, sinks: { other: sink }, olderThan: new Date(Date.now() + 1) });
    expect(kept).toMatchObject({ receiptsDeleted: 0, receiptsKept: 2 });
    // inside the window (no prune), reusing a committed id repeats it instead of importing again
    await expect(runUnit({ ...base, runId: 'a1' })).resolves.toMatchObject({ repeated: true });
    const err = await pruneState({ kv, sinks: sink, olderThan: Number.NaN }).catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    await sink.close();
  });
});
