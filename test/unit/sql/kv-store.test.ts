/** The SQL KvStore's writes without a server: MySQL's transaction (reruns after a lost first-insert race, gives up, never writes on a lost CAS), PostgreSQL's one statement. */
import {
  type DatabaseConnection,
  Kysely,
  MysqlAdapter,
  MysqlIntrospector,
  MysqlQueryCompiler,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../../src/errors/ingest-error.js';
import { MySqlKvStore } from '../../../src/mysql/kv-store.js';
import { PostgresKvStore } from '../../../src/postgres/kv-store.js';

const key = { namespace: 'n', scopeId: 's', key: 'k' };
const row = (version: number, live: number) => ({
  ...{ namespace: 'n', scope_id: 's', key: 'k', value_text: '"v"', version: String(version) },
  ...{ updated_ms: '1000', expires_ms: null, live },
});

/** A kysely instance whose statements are answered by `answer` (throwing = the server's error); `log` records them. */
function fake(engine: 'postgres' | 'mysql', answer: (sql: string) => Record<string, unknown>[]) {
  const log: string[] = [];
  const connection: DatabaseConnection = {
    executeQuery: async (q) => {
      log.push(q.sql.trim().split(/\s+/)[0] + (q.sql.includes('FOR UPDATE') ? ' FOR UPDATE' : ''));
      return { rows: answer(q.sql) as never[], numAffectedRows: 1n };
    },
    streamQuery: () => {
      throw new Error('not used');
    },
  };
  const step = (name: string) => async () => void log.push(name);
  const pg = engine === 'postgres';
  const db = new Kysely<any>({
    dialect: {
      createAdapter: () => (pg ? new PostgresAdapter() : new MysqlAdapter()),
      createQueryCompiler: () => (pg ? new PostgresQueryCompiler() : new MysqlQueryCompiler()),
      createIntrospector: (k) => (pg ? new PostgresIntrospector(k) : new MysqlIntrospector(k)),
      createDriver: () => ({
        init: async () => {},
        acquireConnection: async () => connection,
        beginTransaction: step('BEGIN'),
        commitTransaction: step('COMMIT'),
        rollbackTransaction: step('ROLLBACK'),
        releaseConnection: async () => {},
        destroy: async () => {},
      }),
    },
  });
  return { kv: pg ? new PostgresKvStore({ db }) : new MySqlKvStore({ db }), log };
}

// PostgreSQL puts are one statement (below); MySQL's are a lock-decide-write transaction
describe.each([
  ['mysql', { errno: 1062, code: 'ER_DUP_ENTRY', message: "Duplicate entry 'n-s-k' for key 'PRIMARY'" }],
] as const)('SqlKvStore on %s', (engine, duplicate) => {
  it('a lost first-insert race runs the transaction again, which sees the winner: kv_conflict, nothing written', async () => {
    let locks = 0;
    const { kv, log } = fake(engine, (sql) => {
      if (sql.includes('FOR UPDATE')) return ++locks === 1 ? [] : [row(1, 1)];
      if (sql.startsWith('INSERT')) throw Object.assign(new Error(duplicate.message), duplicate);
      return [];
    });
    const err = await kv.put(key, 'mine', { expectedVersion: null }).catch((e) => e);
    expect(IngestError.is(err, 'kv_conflict')).toBe(true);
    expect(err.details).toMatchObject({ expectedVersion: null, actualVersion: 1 });
    expect(log).toEqual(['BEGIN', 'SELECT FOR UPDATE', 'INSERT', 'ROLLBACK', 'BEGIN', 'SELECT FOR UPDATE', 'COMMIT']);
  });

  it('gives up after 10 runs with kv_failed keeping the server error', async () => {
    const { kv, log } = fake(engine, (sql) => {
      if (sql.startsWith('INSERT')) throw Object.assign(new Error(duplicate.message), duplicate);
      return [];
    });
    const err = await kv.put(key, 'mine').catch((e) => e);
    expect(IngestError.is(err, 'kv_failed')).toBe(true);
    expect(err.message).toContain(duplicate.message);
    expect(log.filter((s) => s === 'BEGIN')).toHaveLength(10);
  });

  it('a tombstone is revived by UPDATE (the version continues); a stale expectedVersion writes nothing', async () => {
    let current = row(4, 0);
    const { kv, log } = fake(engine, (sql) => {
      if (sql.startsWith('UPDATE')) current = row(5, 1);
      return sql.startsWith('SELECT') || sql.includes('RETURNING') ? [current] : [];
    });
    expect((await kv.put(key, 'back', { expectedVersion: null })).version).toBe(5);
    // MySQL's UPDATE has no RETURNING: the row is read back
    const readBack = ['SELECT'];
    expect(log).toEqual(['BEGIN', 'SELECT FOR UPDATE', 'UPDATE', ...readBack, 'COMMIT']);
    const err = await kv.put(key, 'stale', { expectedVersion: 4 }).catch((e) => e);
    expect(err.details).toMatchObject({ expectedVersion: 4, actualVersion: 5 });
    expect(log.slice(4 + readBack.length)).toEqual(['BEGIN', 'SELECT FOR UPDATE', 'COMMIT']);
  });
});

describe('SqlKvStore on postgres', () => {
  it('a put is one statement, never a transaction that a stopped writer could leave holding the row lock', async () => {
    const { kv, log } = fake('postgres', (sql) => (sql.includes('RETURNING') ? [row(3, 1)] : []));
    expect((await kv.put(key, 'v', { expectedVersion: 2 })).version).toBe(3);
    expect((await kv.put(key, 'v', { expectedVersion: null })).version).toBe(3);
    expect((await kv.put(key, 'v')).version).toBe(3);
    expect(log).toEqual(['UPDATE', 'INSERT', 'INSERT']);
  });

  it('a lost compare-and-set writes nothing and names the live version', async () => {
    const { kv, log } = fake('postgres', (sql) => (sql.startsWith('SELECT') ? [row(7, 1)] : []));
    const err = await kv.put(key, 'v', { expectedVersion: 6 }).catch((e) => e);
    expect(IngestError.is(err, 'kv_conflict')).toBe(true);
    expect(err.details).toMatchObject({ expectedVersion: 6, actualVersion: 7 });
    expect(log).toEqual(['UPDATE', 'SELECT']);
  });
});
