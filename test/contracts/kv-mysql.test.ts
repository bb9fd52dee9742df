import { Kysely, MysqlDialect } from 'kysely';
import mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../src/index.js';
import { MySqlKvStore } from '../../src/mysql/index.js';
import { describeKvStore } from '../../src/testing/vitest/index.js';
import { useMySql } from '../helpers/mysql.js';

const env = useMySql('kv');
const k = (key: string, scopeId = 'default') => ({ namespace: 'ingestion', scopeId, key });

async function store(table = 'kv_entries', connectionLimit = 4) {
  const kv = new MySqlKvStore({ db: env.newKysely({ connectionLimit }), table });
  await kv.migrate();
  return kv;
}

describeKvStore('mysql (MariaDB)', () => store('kv_contract'));

describe('MySqlKvStore', () => {
  it('migrate() is idempotent, concurrent-safe, and creates the documented table', async () => {
    const kv = await store();
    await kv.migrate();
    await Promise.all([kv.migrate(), kv.migrate(), new MySqlKvStore({ db: env.newKysely() }).migrate()]);
    const cols = await env.query<any[]>(
      `SELECT column_name AS c, column_type AS t FROM information_schema.columns WHERE table_schema = ? AND table_name = 'kv_entries' ORDER BY ordinal_position`,
      [env.database],
    );
    expect(cols.map((r) => `${r.c}:${r.t}`)).toEqual([
      'namespace:varbinary(255)',
      'scope_id:varbinary(255)',
      'key:varbinary(1024)',
      'value:longtext',
      'version:bigint(20)',
      'created_at:datetime(3)',
      'updated_at:datetime(3)',
      'expires_at:datetime(3)',
    ]);
  });

  it('put/get keep JSON exactly as JSON.stringify wrote it; keys are data; keys differing by a trailing space or case are distinct', async () => {
    const kv = await store();
    const value = { a: [1, 2.5, 'x', null, true], ['__proto__']: { polluted: true }, nested: { 'e\u00e9😀': -0 } };
    await kv.put(k('rt'), value);
    const got = await kv.get(k('rt'));
    expect(got?.value).toEqual(JSON.parse(JSON.stringify(value)));
    expect(Object.hasOwn(got!.value as object, '__proto__')).toBe(true);
    expect(({} as any).polluted).toBeUndefined();
    await kv.put(k('Key'), 'upper');
    await kv.put(k('key'), 'lower');
    await kv.put(k('key '), 'trailing space');
    expect((await kv.get(k('Key')))?.value).toBe('upper');
    expect((await kv.get(k('key')))?.value).toBe('lower');
    expect((await kv.get(k('key ')))?.value).toBe('trailing space');
    expect(await kv.get(k('rt', 'other-scope'))).toBeUndefined();
  });

  it('times are UTC whatever the session time zone, and TTL expiry follows the server clock', async () => {
    const db = env.newKysely({ connectionLimit: 1, timezone: '+05:00' });
    const kv = new MySqlKvStore({ db, table: 'kv_tz' });
    await kv.migrate();
    const before = Date.now();
    const e = await kv.put(k('tz'), 1, { ttlMs: 60_000 });
    expect(Math.abs(e.updatedAt.getTime() - before)).toBeLessThan(5_000);
    expect(e.expiresAt!.getTime() - e.updatedAt.getTime()).toBe(60_000);
  });

  it('compare-and-set: number must match, null must be absent, mismatch is kv_conflict naming the key', async () => {
    const kv = await store();
    expect((await kv.put(k('cas'), 1, { expectedVersion: null })).version).toBe(1);
    const err = await kv.put(k('cas'), 2, { expectedVersion: null }).catch((e) => e);
    expect(IngestError.is(err, 'kv_conflict')).toBe(true);
    expect(err.message).toContain('cas');
    await expect(kv.put(k('cas'), 2, { expectedVersion: 7 })).rejects.toMatchObject({ code: 'kv_conflict' });
    await expect(kv.put(k('nope'), 2, { expectedVersion: 1 })).rejects.toMatchObject({ code: 'kv_conflict' });
    expect(await kv.get(k('nope'))).toBeUndefined();
    expect((await kv.put(k('cas'), 3, { expectedVersion: 1 })).version).toBe(2);
  });

  it('TTL and delete leave tombstones: versions continue; purgeExpired removes them', async () => {
    const kv = await store('kv_purge');
    await kv.put(k('ttl'), 'a', { ttlMs: 100 });
    await new Promise((r) => setTimeout(r, 250));
    expect(await kv.get(k('ttl'))).toBeUndefined();
    await expect(kv.put(k('ttl'), 'b', { expectedVersion: 1 })).rejects.toMatchObject({ code: 'kv_conflict' });
    expect((await kv.put(k('ttl'), 'b', { expectedVersion: null })).version).toBe(2);
    await kv.put(k('d'), 1);
    expect(await kv.delete(k('d'), { expectedVersion: 9 })).toBe(false);
    expect(await kv.delete(k('d'), { expectedVersion: 1 })).toBe(true);
    expect(await kv.delete(k('d'))).toBe(false);
    expect((await kv.put(k('d'), 3, { expectedVersion: null })).version).toBe(2);
    await kv.put(k('gone'), 1, { ttlMs: 50 });
    await new Promise((r) => setTimeout(r, 150));
    expect(await kv.purgeExpired()).toBe(1);
    const rows = await env.query<any[]>('SELECT CAST(`key` AS CHAR) AS k FROM kv_purge ORDER BY `key`');
    expect(rows.map((r) => r.k)).toEqual(['d', 'ttl']);
  });

  it('list pages in bytewise key order with LIKE wildcards and the escape character taken literally', async () => {
    const kv = new MySqlKvStore({ db: env.newKysely({ connectionLimit: 2 }), table: 'kv_list', listPageSize: 3 });
    await kv.migrate();
    const keys = ['a%1', 'a%2', 'ab', 'a_x', 'a!y', 'a!', 'b', 'a%3', 'a%0', 'a%4', 'aé', 'aZ'];
    for (const key of keys) await kv.put(k(key), key);
    const collect = async (keyPrefix?: string) => {
      const out: string[] = [];
      for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default', keyPrefix })) out.push(e.key);
      return out;
    };
    expect(await collect('a%')).toEqual(['a%0', 'a%1', 'a%2', 'a%3', 'a%4']);
    expect(await collect('a_')).toEqual(['a_x']);
    expect(await collect('a!')).toEqual(['a!', 'a!y']);
    const bytewise = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(await collect()).toEqual(bytewise);
  });

  it('refuses keys longer than the columns hold, before any I/O', async () => {
    const kv = await store();
    await expect(kv.put(k('x'.repeat(1025)), 1)).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(kv.get({ namespace: 'n'.repeat(256), scopeId: 's', key: 'k' })).rejects.toMatchObject({
      code: 'config_invalid',
    });
  });

  it('a dead server is kv_failed and retryable, without the password', async () => {
    const pool = mysql.createPool({ uri: 'mysql://nobody:hunter2secret@127.0.0.1:1/none', connectTimeout: 500 });
    const kv = new MySqlKvStore({ db: new Kysely<any>({ dialect: new MysqlDialect({ pool }) }) });
    const err = await kv.get(k('x')).catch((e) => e);
    expect(IngestError.is(err, 'kv_failed')).toBe(true);
    expect(err.retryable).toBe(true);
    expect(JSON.stringify({ m: err.message, s: err.stack, c: String(err.cause) })).not.toContain('hunter2secret');
    await new Promise<void>((r) => pool.end(() => r()));
  });

  it('8 connections racing compare-and-set on one key: distinct, contiguous versions, none lost', async () => {
    const kv0 = await store('kv_race');
    await kv0.put(k('race'), [], { expectedVersion: null });
    const writers = Array.from(
      { length: 8 },
      () => new MySqlKvStore({ db: env.newKysely({ connectionLimit: 1 }), table: 'kv_race' }),
    );
    const successes: number[] = [];
    let conflicts = 0;
    await Promise.all(
      writers.map(async (kv, w) => {
        for (let i = 0; i < 20; i++) {
          const cur = (await kv.get<number[]>(k('race')))!;
          try {
            successes.push(
              (await kv.put(k('race'), [...cur.value, w * 1000 + i], { expectedVersion: cur.version })).version,
            );
          } catch (err) {
            if (!IngestError.is(err, 'kv_conflict')) throw err;
            conflicts++;
          }
        }
      }),
    );
    successes.sort((a, b) => a - b);
    expect(successes).toEqual(Array.from({ length: successes.length }, (_, i) => i + 2));
    expect(conflicts).toBeGreaterThan(0);
    const final = (await kv0.get<number[]>(k('race')))!;
    expect(final.value.length).toBe(successes.length);
    expect(new Set(final.value).size).toBe(successes.length);
  });

  it('8 connections racing the first insert of one key with expectedVersion null: exactly one wins', async () => {
    await store('kv_first');
    const writers = Array.from(
      { length: 8 },
      () => new MySqlKvStore({ db: env.newKysely({ connectionLimit: 1 }), table: 'kv_first' }),
    );
    const results = await Promise.allSettled(writers.map((kv, i) => kv.put(k('first'), i, { expectedVersion: null })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(IngestError.is(r.reason, 'kv_conflict')).toBe(true);
  });
});
