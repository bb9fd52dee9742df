import { readdir } from 'node:fs/promises';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresKvStore } from '../../src/postgres/index.js';
import { randomSchemaName, usePostgres } from '../helpers/pg.js';
import { runCli, workspace } from './cli-helpers.js';

const env = usePostgres('cli');
const freshSchemas: string[] = [];
afterAll(async () => {
  for (const s of freshSchemas) await env.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
});

const schemaExists = async (name: string) =>
  (await env.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [name])).rows[0].n === 1;

describe('nucleus-ingest with PostgreSQL (sink and KvStore)', { timeout: 300_000 }, () => {
  it('loads a unit into a PostgreSQL table with the checkpoint in kv_entries; a second run adds no row', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'pg.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 750, batchSize: 100 } } } }
sink:
  type: postgres
  id: warehouse
  config: { connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${env.schema} }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: postgres, connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${env.schema} }
units: [users]
policy: { sliceMaxRows: 200 }
`,
    );
    const opts = { env: { NUCLEUS_PG_URL: env.url } };
    const first = await runCli(['--json', 'run', file], opts);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'ok',
      stats: { rowsImported: 750, slices: 4 },
    });
    const count = async () =>
      Number((await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".users`)).rows[0].n);
    expect(await count()).toBe(750);
    const ids = await env.query(
      `SELECT min(id)::int AS lo, max(id)::int AS hi, count(DISTINCT id)::int AS n FROM "${env.schema}".users`,
    );
    expect(ids.rows[0]).toEqual({ lo: 1, hi: 750, n: 750 });
    const kv = await env.query(
      `SELECT key, value, version FROM "${env.schema}".kv_entries WHERE key NOT LIKE '%::run' AND key NOT LIKE '%::run::%' AND key NOT LIKE '%::lease' ORDER BY key`,
    );
    // the checkpoint, and the unit's schema history (docs/schema-evolution.md)
    expect(kv.rows).toEqual([
      { key: 'ingest::sample::endpoint::crm::unit::users::sink::warehouse', value: { lastId: 750 }, version: '1' },
      expect.objectContaining({ key: 'ingest::sample::endpoint::crm::unit::users::sink::warehouse::schema' }),
    ]);

    const second = await runCli(['--json', 'run', file], opts);
    expect(second.code).toBe(0);
    expect(await count()).toBe(750);

    const status = await runCli(['--json', 'status', file, 'users'], opts);
    expect(status.lines[0]).toMatchObject({
      checkpoint: { value: { lastId: 750 } },
      run: { value: { phase: 'committed' } },
    });
  });
});

describe('nucleus-ingest staging codecs', { timeout: 300_000 }, () => {
  it('`codec: pg-copy` stages COPY text: a PostgreSQL table copies exactly, equal to the source as text', async () => {
    await env.query(
      `CREATE TABLE "${env.schema}".codec_src (id bigint PRIMARY KEY, at timestamptz, doc jsonb, n numeric)`,
    );
    await env.query(
      `INSERT INTO "${env.schema}".codec_src SELECT g, now() - g * interval '1.000001 s', jsonb_build_object('v', 1.50, 'g', g), g / 7.0 FROM generate_series(1, 900) g`,
    );
    const ws = await workspace();
    const file = await ws.write(
      'copy.yaml',
      `source: { type: postgres, id: db, config: { connectionString: "\${env:NUCLEUS_PG_URL}", units: { ${env.schema}.codec_src: { cursorColumns: [id] } } } }
sink: { type: postgres, id: wh, config: { connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${env.schema}_copy } }
staging: { type: filesystem, root: "${ws.dir}/staging", codec: pg-copy }
kv: { type: file, path: "${ws.dir}/kv.json" }
units: [${env.schema}.codec_src]
policy: { sliceMaxRows: 400 }
`,
    );
    freshSchemas.push(`${env.schema}_copy`);
    const res = await runCli(['--json', 'run', file], { env: { NUCLEUS_PG_URL: env.url } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'ok',
      stats: { rowsImported: 900 },
    });
    const staged = await readdir(`${ws.dir}/staging`, { recursive: true });
    expect(staged.some((f) => String(f).endsWith('.pgcopy'))).toBe(true);
    const diff = await env.query(
      `SELECT count(*)::int AS n FROM ((SELECT t::text FROM "${env.schema}".codec_src t EXCEPT ALL SELECT t::text FROM "${env.schema}_copy".codec_src t)
        UNION ALL (SELECT t::text FROM "${env.schema}_copy".codec_src t EXCEPT ALL SELECT t::text FROM "${env.schema}".codec_src t)) d`,
    );
    expect(diff.rows[0].n).toBe(0);
  });

  it('an unknown staging codec is config_invalid naming staging.codec, before anything runs', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'bad.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 5 } } } }
sink: { type: object-store, id: lake, config: { root: "${ws.dir}/lake", format: ndjson } }
staging: { type: filesystem, root: "${ws.dir}/staging", codec: parquet }
kv: { type: file, path: "${ws.dir}/kv.json" }
units: [users]
`,
    );
    const res = await runCli(['run', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/config_invalid/);
    expect(res.stderr).toMatch(/staging\.codec/);
  });
});

describe('PostgreSQL KvStore on a fresh database', { timeout: 300_000 }, () => {
  it('PostgresKvStore.migrate() creates its schema when missing, twice and concurrently without error', async () => {
    const schema = randomSchemaName('kvfresh');
    freshSchemas.push(schema);
    expect(await schemaExists(schema)).toBe(false);
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: env.url }) }) });
    try {
      const kvs = Array.from({ length: 4 }, () => new PostgresKvStore({ db, schema }));
      await Promise.all(kvs.map((kv) => kv.migrate()));
      await kvs[0].migrate();
      expect(await schemaExists(schema)).toBe(true);
      const key = { namespace: 'ingestion', scopeId: 'default', key: 'k' };
      await kvs[0].put(key, { at: 1 }, { expectedVersion: null });
      expect((await kvs[1].get(key))?.value).toEqual({ at: 1 });
    } finally {
      await db.destroy();
    }
  });

  it('the CLI runs with `kv: { type: postgres, schema: <missing> }` and creates the schema', async () => {
    const schema = randomSchemaName('clikv');
    freshSchemas.push(schema);
    const ws = await workspace();
    const file = await ws.write(
      'pg.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 50 } } } }
sink: { type: object-store, id: lake, config: { root: "${ws.dir}/lake", format: ndjson } }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: postgres, connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${schema} }
units: [users]
`,
    );
    const res = await runCli(['run', file], { env: { NUCLEUS_PG_URL: env.url } });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const kv = await env.query(`SELECT value FROM "${schema}".kv_entries WHERE key NOT LIKE '%::%::run'`);
    expect(kv.rows.map((r) => r.value)).toContainEqual({ lastId: 50 });
  });

  it('preview of a PostgreSQL table is in primary-key order and says "(1 row)"', async () => {
    const table = `pv_${Math.random().toString(36).slice(2, 8)}`;
    await env.query(`CREATE TABLE "${env.schema}"."${table}" (id int PRIMARY KEY, name text)`);
    // inserted out of key order, then updated so the heap order differs from the key order
    await env.query(`INSERT INTO "${env.schema}"."${table}" VALUES (3, 'c'), (1, 'a'), (2, 'b')`);
    await env.query(`UPDATE "${env.schema}"."${table}" SET name = 'a' WHERE id = 1`);
    const ws = await workspace();
    const file = await ws.write(
      'preview.yaml',
      `source: { type: postgres, config: { connectionString: "\${env:NUCLEUS_PG_URL}" } }
sink: { type: object-store, config: { root: "${ws.dir}/lake", format: ndjson } }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: file, path: "${ws.dir}/kv.json" }
`,
    );
    const opts = { env: { NUCLEUS_PG_URL: env.url } };
    const json = await runCli(['--json', 'preview', file, `${env.schema}.${table}`], opts);
    expect(json.code).toBe(0);
    expect(json.lines[0].rows).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
      { id: 3, name: 'c' },
    ]);
    const one = await runCli(['preview', file, `${env.schema}.${table}`, '--limit', '1'], opts);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^id\s+name\n─+\s+─+\n1\s+a\n\(1 row\)\n$/);
  });
});
