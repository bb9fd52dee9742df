import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
  type SourceWarningEvent,
} from '../../src/index.js';
import { PostgresCdcSource, PostgresSink } from '../../src/postgres/index.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';

const cluster = useLogicalCluster();
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

describe('PostgresCdcSource: a slot retaining WAL past lagWarnBytes emits a source.warning event', () => {
  let db: pg.Pool;
  beforeAll(async () => {
    db = cluster.pool();
    await db.query('CREATE SCHEMA app');
    await db.query('CREATE TABLE app.w (id bigint PRIMARY KEY, v text)');
    await db.query('CREATE PUBLICATION pub_w FOR TABLE app.w');
    await db.query("INSERT INTO app.w SELECT g, 'v' || g FROM generate_series(1, 10) g");
    await db.query('CREATE TABLE app.noise (id serial PRIMARY KEY, v text)');
  });

  it('emits cdc.retained_wal with the slot and the figures once the threshold is passed, not below it', async () => {
    const source = new PostgresCdcSource({
      connectionString: cluster.url,
      publication: 'pub_w',
      slot: 'warn',
      units: ['app.w'],
      maxWaitMs: 5_000,
      lagWarnBytes: 512 * 1024,
    });
    const sink = new PostgresSink({ connectionString: cluster.url, schema: 'tgt' });
    closers.push(
      () => source.close(),
      () => sink.close(),
    );
    const kv = new MemoryKvStore();
    const run = async () => {
      const events: IngestionEvent[] = [];
      await runUnit({
        source,
        sink,
        staging: new MemoryStagingProvider(),
        kv,
        unit: { vendor: 'postgres', endpointId: 'cdc', unitId: 'app.w' },
        disposition: 'merge',
        onEvent: (e) => events.push(e),
      });
      return events.filter((e): e is SourceWarningEvent => e.type === 'source.warning');
    };
    expect(await run()).toEqual([]); // the snapshot: no slot before it
    await db.query("UPDATE app.w SET v = 'x' WHERE id = 1");
    expect(await run()).toEqual([]); // little WAL retained
    // WAL of another table moves past the threshold while the unit does not run
    await db.query("INSERT INTO app.noise (v) SELECT repeat('n', 200) FROM generate_series(1, 10000)");
    const [status] = await source.status();
    expect(status.warning).toBe(true);
    const warnings = await run();
    expect(warnings).toHaveLength(1);
    const w = warnings[0];
    expect(w.code).toBe('cdc.retained_wal');
    expect(w.unitId).toBe('app.w');
    expect(w.runId).toBeTruthy();
    expect(w.message).toContain(source.slotOf('app.w'));
    expect(w.details).toMatchObject({ slot: source.slotOf('app.w'), thresholdBytes: 512 * 1024 });
    expect(Number(w.details?.retainedBytes)).toBeGreaterThan(512 * 1024);
    // that run read past the other table's WAL and released it; the server moves restart_lsn once decoding passes
    // a running-transactions record (a checkpoint logs one): then runs are below the threshold again
    await db.query('CHECKPOINT');
    await db.query("UPDATE app.w SET v = 'y' WHERE id = 2");
    await run();
    expect((await source.status())[0].warning).toBe(false);
    expect(await run()).toEqual([]);
  });
});
