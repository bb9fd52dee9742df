/**
 * MariaDB/MySQL test helpers: one random database per test file (created in `beforeAll`, dropped in `afterAll`),
 * pool and kysely factories closed with it. MYSQL_URL overrides the default `mysql://root@127.0.0.1:3306/test`.
 * A server that does not answer fails the suite loudly.
 */
import { randomBytes } from 'node:crypto';
import { Kysely, MysqlDialect } from 'kysely';
import mysql from 'mysql2';
import type { Pool as PromisePool } from 'mysql2/promise';
import { afterAll, beforeAll } from 'vitest';

export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';

export function mysqlUrl(): string {
  return process.env.MYSQL_URL || DEFAULT_MYSQL_URL;
}

export interface MySqlTestEnv {
  /** The database of this test file (exists between beforeAll and afterAll). */
  readonly database: string;
  /** `mysql://…/<database>` */
  readonly url: string;
  /** An admin pool (promise API) whose default database is the test database. */
  readonly pool: PromisePool;
  /** A new callback-style pool (what kysely and the endpoints take) on the test database; ended in afterAll. */
  newPool(opts?: mysql.PoolOptions): mysql.Pool;
  newKysely(opts?: mysql.PoolOptions): Kysely<any>;
  query<R = any>(text: string, values?: unknown[]): Promise<R>;
}

export function useMySql(prefix = 't'): MySqlTestEnv {
  const database = `${prefix}_${randomBytes(5).toString('hex')}`;
  const base = new URL(mysqlUrl());
  const url = new URL(base.toString());
  url.pathname = `/${database}`;
  const pools: mysql.Pool[] = [];
  const dbs: Kysely<any>[] = [];
  let admin: PromisePool | undefined;
  const newPool = (opts: mysql.PoolOptions = {}) => {
    const p = mysql.createPool({
      uri: url.toString(),
      connectionLimit: 10,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      timezone: 'Z',
      charset: 'utf8mb4',
      ...opts,
    });
    p.on('error' as never, () => {});
    pools.push(p);
    return p;
  };
  beforeAll(async () => {
    const boot = mysql.createPool({ uri: base.toString(), connectionLimit: 1 }).promise();
    await boot.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    await boot.end();
    admin = newPool().promise();
  });
  afterAll(async () => {
    for (const db of dbs) await db.destroy().catch(() => {});
    // end every pool first: a connection left inside a transaction would hold a metadata lock DROP DATABASE waits on
    for (const p of pools) await new Promise<void>((r) => p.end(() => r()));
    const boot = mysql.createPool({ uri: base.toString(), connectionLimit: 1 }).promise();
    try {
      await boot.query(`DROP DATABASE IF EXISTS \`${database}\``);
    } finally {
      await boot.end();
    }
  });
  return {
    database,
    url: url.toString(),
    get pool() {
      if (!admin) throw new Error('useMySql: pool used outside a test');
      return admin;
    },
    newPool,
    newKysely(opts) {
      const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: newPool(opts) }) });
      dbs.push(db);
      return db;
    },
    async query(text, values) {
      if (!admin) throw new Error('useMySql: query used outside a test');
      const [rows] = await admin.query(text, values);
      return rows as never;
    },
  };
}
