/**
 * PostgreSQL test helpers: the database URL from the global setup, one random schema per test file
 * (created in `beforeAll`, dropped in `afterAll`), and pool / kysely factories that are closed with it.
 */
import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

export const DEFAULT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/test';

/** The URL the global setup checked (or started), else DATABASE_URL, else the default. */
export function databaseUrl(): string {
  let provided: string | undefined;
  try {
    provided = inject('databaseUrl');
  } catch {
    provided = undefined;
  }
  return provided || process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/** A random lower-case schema name with a readable prefix. */
export function randomSchemaName(prefix = 't'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export interface PgTestEnv {
  /** The schema of this test file (exists between beforeAll and afterAll). */
  readonly schema: string;
  readonly url: string;
  /** An admin pool on the test database (closed in afterAll). */
  readonly pool: pg.Pool;
  /** A new pool whose connections use the test schema as `search_path`; closed in afterAll. */
  newPool(opts?: pg.PoolConfig): pg.Pool;
  /** A kysely instance on a new pool; destroyed in afterAll. */
  newKysely(opts?: pg.PoolConfig): Kysely<any>;
  /** Run SQL on the admin pool. */
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Register beforeAll/afterAll hooks that create a random schema for this test file and drop it afterwards.
 * Access the fields only inside tests or hooks.
 */
export function usePostgres(prefix = 't'): PgTestEnv {
  const schema = randomSchemaName(prefix);
  const url = databaseUrl();
  const pools: pg.Pool[] = [];
  const dbs: Kysely<any>[] = [];
  let admin: pg.Pool | undefined;
  const newPool = (opts: pg.PoolConfig = {}) => {
    // Idle connections close at once: CI runs three test files at a time against one server (max_connections 100),
    // and a file's pools stay open until its afterAll.
    const p = new pg.Pool({
      connectionString: url,
      max: 10,
      idleTimeoutMillis: 200,
      options: `-c search_path="${schema}",public`,
      ...opts,
    });
    p.on('error', () => {});
    pools.push(p);
    return p;
  };
  beforeAll(async () => {
    admin = newPool({ options: undefined });
    await admin.query(`CREATE SCHEMA "${schema}"`);
  });
  afterAll(async () => {
    for (const db of dbs) await db.destroy().catch(() => {});
    try {
      await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      for (const p of pools) if (!p.ended) await p.end().catch(() => {});
    }
  });
  return {
    schema,
    url,
    get pool() {
      if (!admin) throw new Error('usePostgres: pool used outside a test');
      return admin;
    },
    newPool,
    newKysely(opts) {
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: newPool(opts) }) });
      dbs.push(db);
      return db;
    },
    query(text, values) {
      if (!admin) throw new Error('usePostgres: query used outside a test');
      return admin.query(text, values as any[]);
    },
  };
}
