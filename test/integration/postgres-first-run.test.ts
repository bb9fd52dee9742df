/**
 * Issue 11 items 4 and 5 against a real PostgreSQL source: a missing table is refused before any state exists, and
 * a run that fails before it staged a row (a cursor column that does not exist) leaves no run state and no staging.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  checkpointKey,
  IngestError,
  type KvStore,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  runUnit,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('firstrun');

async function kvKeys(kv: KvStore): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default' })) out.push(e.key);
  return out;
}

describe('PostgresSource: nothing behind a run that could not start', () => {
  it('a missing table, a bad cursor column: no run state, no staging; then a good run works', async () => {
    const s = `"${env.schema}"`;
    await env.query(`CREATE TABLE ${s}.t (id bigint PRIMARY KEY, v text)`);
    await env.query(`INSERT INTO ${s}.t SELECT g, 'v' || g FROM generate_series(1, 100) g`);
    const pool = env.newPool();
    const root = await mkdtemp(join(tmpdir(), 'firstrun-'));
    const kv = new MemoryKvStore();
    const base = {
      sink: new PostgresSink({ pool, tables: { [`${env.schema}.t`]: `${env.schema}.t_copy` } }),
      staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
      kv,
      policy: { retry: { maxAttempts: 1 } },
    };
    try {
      const missing = await runUnit({
        ...base,
        source: new PostgresSource({ pool }),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId: `${env.schema}.nope` },
      }).catch((e) => e);
      expect(IngestError.is(missing, 'config_invalid'), String(missing)).toBe(true);
      expect(await kvKeys(kv)).toEqual([]);
      expect(await readdir(root)).toEqual([]);

      const unitId = `${env.schema}.t`;
      const badCursor = await runUnit({
        ...base,
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['no_such_column'] } } }),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental',
      }).catch((e) => e);
      expect(IngestError.is(badCursor), String(badCursor)).toBe(true);
      expect((await kvKeys(kv)).filter((k) => !k.endsWith('::lease'))).toEqual([]);
      expect(await readdir(root, { recursive: true }).then((f) => f.filter((x) => x.endsWith('.json')))).toEqual([]);

      const ok = await runUnit({
        ...base,
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['id'] } } }),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental',
      });
      expect(ok.resumed).toBe(false);
      expect(ok.stats.rowsImported).toBe(100);

      // Nothing new: no session, no checkpoint write (issue 11 item 7).
      const key = checkpointKey({ vendor: 'postgres', endpointId: 'pg', unitId });
      const before = await kv.get(key);
      const staged = async () =>
        (await readdir(root, { recursive: true })).filter((f) => !f.startsWith('.nucleus~meta'));
      const sessions = await staged();
      const empty = await runUnit({
        ...base,
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['id'] } } }),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental',
      });
      expect(empty.stats.rowsExported).toBe(0);
      expect(await kv.get(key)).toEqual(before);
      expect(await staged()).toEqual(sessions);
    } finally {
      await pool.end();
    }
  });
});

describe('PostgresSource: an empty table', () => {
  it('a full run creates the empty target with the source types (fs staging, resumable state); then rows arrive and land', async () => {
    const s = `"${env.schema}"`;
    await env.query(
      `CREATE TABLE ${s}.empty_src (id bigint PRIMARY KEY, at timestamptz NOT NULL, amount numeric(12,2), tag uuid)`,
    );
    const pool = env.newPool({ max: 2 });
    const root = await mkdtemp(join(tmpdir(), 'emptyrun-'));
    const kv = new MemoryKvStore();
    const base = {
      source: new PostgresSource({ pool, units: { [`${env.schema}.empty_src`]: { cursorColumns: ['at'] } } }),
      sink: new PostgresSink({ pool, tables: { [`${env.schema}.empty_src`]: `${env.schema}.empty_copy` } }),
      staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
      kv,
      unit: { vendor: 'postgres', endpointId: 'db', unitId: `${env.schema}.empty_src` },
    };
    const first = await runUnit({ ...base, mode: 'full' });
    expect(first.stats.rowsImported).toBe(0);
    const cols = await env.query(
      `SELECT column_name, format_type(atttypid, atttypmod) AS type FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = '${s}.empty_copy'::regclass AND a.attname = c.column_name
        WHERE table_schema = $1 AND table_name = 'empty_copy' ORDER BY ordinal_position`,
      [env.schema],
    );
    expect(cols.rows).toEqual([
      { column_name: 'id', type: 'bigint' },
      { column_name: 'at', type: 'timestamp with time zone' },
      { column_name: 'amount', type: 'numeric(12,2)' },
      { column_name: 'tag', type: 'uuid' },
    ]);
    await env.query(
      `INSERT INTO ${s}.empty_src VALUES (1, '2026-01-01 00:00:00.000001+00', 1.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`,
    );
    const second = await runUnit({ ...base, mode: 'full' });
    expect(second.stats.rowsImported).toBe(1);
    const diff = await env.query(
      `SELECT count(*)::int AS n FROM ((SELECT t::text FROM ${s}.empty_src t EXCEPT ALL SELECT t::text FROM ${s}.empty_copy t)
        UNION ALL (SELECT t::text FROM ${s}.empty_copy t EXCEPT ALL SELECT t::text FROM ${s}.empty_src t)) d`,
    );
    expect(diff.rows[0].n).toBe(0);
  });
});
