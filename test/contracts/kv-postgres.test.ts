import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../src/index.js';
import { PostgresKvStore } from '../../src/postgres/index.js';
import { describeKvStore } from '../../src/testing/vitest/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('kv');
const k = (key: string, scopeId = 'default') => ({ namespace: 'ingestion', scopeId, key });

async function store(table = 'kv_entries') {
  const kv = new PostgresKvStore({ db: env.newKysely({ max: 4 }), schema: env.schema, table });
  await kv.migrate();
  return kv;
}

describeKvStore('postgres', async () => {
  const kv = new PostgresKvStore({ db: env.newKysely({ max: 4 }), schema: env.schema, table: 'kv_contract' });
  await kv.migrate();
  return kv;
});

describe('PostgresKvStore', () => {
  it('migrate() is idempotent and creates the documented table', async () => {
    const kv = await store();
    await kv.migrate();
    await Promise.all([kv.migrate(), kv.migrate()]);
    const cols = await env.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'kv_entries' ORDER BY ordinal_position`,
      [env.schema],
    );
    expect(cols.rows.map((r) => `${r.column_name}:${r.data_type}`)).toEqual([
      'namespace:text',
      'scope_id:text',
      'key:text',
      'value:jsonb',
      'version:bigint',
      'created_at:timestamp with time zone',
      'updated_at:timestamp with time zone',
      'expires_at:timestamp with time zone',
    ]);
  });

  it('put/get round-trip JSON values with increasing versions; keys are data', async () => {
    const kv = await store();
    const value = { a: [1, 2.5, 'x', null, true], ['__proto__']: { polluted: true }, nested: { 'e\u00e9': -0 } };
    const e1 = await kv.put(k('rt'), value);
    expect(e1.version).toBe(1);
    const got = await kv.get(k('rt'));
    expect(got?.value).toEqual(JSON.parse(JSON.stringify(value)));
    expect(Object.hasOwn(got!.value as object, '__proto__')).toBe(true);
    expect(({} as any).polluted).toBeUndefined();
    expect(got?.updatedAt).toBeInstanceOf(Date);
    const e2 = await kv.put(k('rt'), 'second');
    expect(e2.version).toBe(2);
    expect((await kv.get(k('rt')))?.value).toBe('second');
    expect(await kv.get(k('rt', 'other-scope'))).toBeUndefined();
  });

  it('compare-and-set: number must match, null must be absent, mismatch is kv_conflict naming the key', async () => {
    const kv = await store();
    const e1 = await kv.put(k('cas'), 1, { expectedVersion: null });
    expect(e1.version).toBe(1);
    const err = await kv.put(k('cas'), 2, { expectedVersion: null }).catch((e) => e);
    expect(IngestError.is(err, 'kv_conflict')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('cas');
    await expect(kv.put(k('cas'), 2, { expectedVersion: 7 })).rejects.toMatchObject({ code: 'kv_conflict' });
    await expect(kv.put(k('nope'), 2, { expectedVersion: 1 })).rejects.toMatchObject({ code: 'kv_conflict' });
    expect(await kv.get(k('nope'))).toBeUndefined();
    const e2 = await kv.put(k('cas'), 3, { expectedVersion: 1 });
    expect(e2.version).toBe(2);
    expect((await kv.get(k('cas')))?.value).toBe(3);
  });

  it('TTL: expired entries are invisible, count as absent, and versions continue after expiry', async () => {
    const kv = await store();
    const e1 = await kv.put(k('ttl'), 'a', { ttlMs: 150 });
    expect(e1.expiresAt!.getTime()).toBeGreaterThan(Date.now() - 1000);
    expect((await kv.get(k('ttl')))?.value).toBe('a');
    await new Promise((r) => setTimeout(r, 300));
    expect(await kv.get(k('ttl'))).toBeUndefined();
    const listed = [];
    for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default', keyPrefix: 'ttl' })) listed.push(e);
    expect(listed).toEqual([]);
    await expect(kv.put(k('ttl'), 'b', { expectedVersion: 1 })).rejects.toMatchObject({ code: 'kv_conflict' });
    const e2 = await kv.put(k('ttl'), 'b', { expectedVersion: null });
    expect(e2.version).toBe(2);
    expect(e2.expiresAt).toBeUndefined();
  });

  it('delete: conditional, returns whether a live entry went, and the version sequence continues', async () => {
    const kv = await store();
    await kv.put(k('d'), 1);
    await kv.put(k('d'), 2);
    expect(await kv.delete(k('d'), { expectedVersion: 1 })).toBe(false);
    expect(await kv.delete(k('d'), { expectedVersion: 2 })).toBe(true);
    expect(await kv.get(k('d'))).toBeUndefined();
    expect(await kv.delete(k('d'))).toBe(false);
    const e = await kv.put(k('d'), 3, { expectedVersion: null });
    expect(e.version).toBe(3);
  });

  it('purgeExpired removes expired rows only', async () => {
    const kv = await store('kv_purge');
    await kv.put(k('keep'), 1);
    await kv.put(k('gone'), 1, { ttlMs: 50 });
    await new Promise((r) => setTimeout(r, 120));
    expect(await kv.purgeExpired()).toBe(1);
    const { rows } = await env.query(`SELECT key FROM "${env.schema}".kv_purge ORDER BY key`);
    expect(rows.map((r) => r.key)).toEqual(['keep']);
  });

  it('list filters by prefix with LIKE wildcards taken literally, ordered by key, across pages', async () => {
    const kv = new PostgresKvStore({
      db: env.newKysely({ max: 2 }),
      schema: env.schema,
      table: 'kv_list',
      listPageSize: 3,
    });
    await kv.migrate();
    const keys = ['a%1', 'a%2', 'ab', 'a_x', 'a\\y', 'a\\', 'b', 'a%3', 'a%0', 'a%4'];
    for (const key of keys) await kv.put(k(key), key);
    const collect = async (keyPrefix?: string) => {
      const out: string[] = [];
      for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default', keyPrefix })) out.push(e.key);
      return out;
    };
    expect(await collect('a%')).toEqual(['a%0', 'a%1', 'a%2', 'a%3', 'a%4']);
    expect(await collect('a_')).toEqual(['a_x']);
    expect(await collect('a\\')).toEqual(['a\\', 'a\\y']);
    expect(await collect()).toEqual([...keys].sort());
  });

  it('a dead server is kv_failed and retryable', async () => {
    const pool = new pg.Pool({
      connectionString: 'postgres://nobody:hunter2secret@127.0.0.1:1/none',
      connectionTimeoutMillis: 500,
    });
    const kv = new PostgresKvStore({ db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) });
    const err = await kv.get(k('x')).catch((e) => e);
    expect(IngestError.is(err, 'kv_failed')).toBe(true);
    expect(err.retryable).toBe(true);
    expect(JSON.stringify({ m: err.message, s: err.stack, c: String(err.cause) })).not.toContain('hunter2secret');
    await pool.end();
  });

  it('8 connections racing compare-and-set on one key: distinct, contiguous versions, none lost', async () => {
    const kv0 = await store('kv_race');
    await kv0.put(k('race'), [], { expectedVersion: null });
    const writers = Array.from(
      { length: 8 },
      () => new PostgresKvStore({ db: env.newKysely({ max: 1 }), schema: env.schema, table: 'kv_race' }),
    );
    const rounds = 25;
    const successes: Array<{ writer: number; version: number }> = [];
    let conflicts = 0;
    await Promise.all(
      writers.map(async (kv, w) => {
        for (let i = 0; i < rounds; i++) {
          const cur = (await kv.get<number[]>(k('race')))!;
          try {
            const e = await kv.put(k('race'), [...cur.value, w * 1000 + i], { expectedVersion: cur.version });
            successes.push({ writer: w, version: e.version });
          } catch (err) {
            if (!IngestError.is(err, 'kv_conflict')) throw err;
            conflicts++;
          }
        }
      }),
    );
    const versions = successes.map((s) => s.version).sort((a, b) => a - b);
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 2));
    expect(conflicts).toBeGreaterThan(0);
    expect(successes.length + conflicts).toBe(8 * rounds);
    const final = (await kv0.get<number[]>(k('race')))!;
    expect(final.version).toBe(successes.length + 1);
    expect(final.value.length).toBe(successes.length);
    expect(new Set(final.value).size).toBe(successes.length);
  });
});
