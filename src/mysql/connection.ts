import type { Readable } from 'node:stream';
import mysql from 'mysql2';
import { z } from 'zod';
import { IngestError } from '../errors/ingest-error.js';
import {
  connectionStringField,
  endpointOptionsParser,
  guardErrors,
  registerUrlPassword,
  type SqlEndpointPool,
} from '../sql/endpoint-options.js';
import { mySqlConnectionStringIssues } from './connection-string.js';
import { wrapMySqlError } from './errors.js';

export { mySqlConnectionStringIssues };

/**
 * The part of a `mysql2` pool the endpoints use (structural): the callback pool of `mysql2.createPool()` — the one
 * kysely's `MysqlDialect` takes — or a `mysql2/promise` pool (its `.pool` is used).
 * @public
 */
export interface MySqlPoolLike {
  /** Check a connection out (callback style, as `mysql2.createPool()`). */
  getConnection(callback: (err: any, connection: any) => void): void;
  /** Close the pool. */
  end(callback?: (err?: any) => void): void;
}

/** Options every pool the library builds gets: exact numbers and dates as text, UTC, utf8mb4. */
export const EXACT_POOL_OPTIONS = {
  supportBigNumbers: true,
  bigNumberStrings: true,
  dateStrings: true,
  timezone: 'Z',
  charset: 'utf8mb4',
  multipleStatements: false,
} as const;

/**
 * Session settings of every connection the endpoints use, restored when the connection goes back to an injected
 * pool: UTC for TIMESTAMP columns, and a SQL mode without surprises (strict, `0` stays `0` in AUTO_INCREMENT
 * columns, backslash escapes and backtick identifiers as the driver writes them).
 */
export const SESSION_SQL_MODE = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO';

/**
 * Parse `mysql://user:password@host:port/database` (also `mariadb://`) into mysql2 pool options. The password is
 * registered as a secret. Query parameters: `ssl=true|required` (TLS, verified), `ssl=insecure` (TLS, not verified),
 * `connectTimeout=<ms>`.
 * @throws IngestError `config_invalid` naming what is wrong (never the password)
 * @internal
 */
export function parseMySqlConnectionString(text: string): mysql.PoolOptions {
  const issues = mySqlConnectionStringIssues(text);
  if (issues.length) {
    throw new IngestError('config_invalid', `Invalid MySQL connection string: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
  registerUrlPassword(text);
  const url = new URL(text);
  const opts: mysql.PoolOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (db) opts.database = db;
  const ssl = url.searchParams.get('ssl');
  if (ssl === 'true' || ssl === 'required') opts.ssl = {};
  if (ssl === 'insecure') opts.ssl = { rejectUnauthorized: false };
  const timeout = url.searchParams.get('connectTimeout');
  if (timeout) opts.connectTimeout = Number(timeout);
  return opts;
}

/** A connection string mysql2 can connect with (see {@link mySqlConnectionStringIssues}); a secret. @internal */
export const mySqlConnectionStringSchema = connectionStringField(
  'connectionString',
  mySqlConnectionStringIssues,
  'mysql://user:password@host:port/database',
);

/** A pool the endpoint uses, and whether it must end it on close. @internal */
export type MySqlEndpointPool = SqlEndpointPool<MySqlPoolLike>;

/**
 * Validate a MySQL endpoint's options once (JSON config, injected mysql2 pool, connectionString XOR pool) in one
 * `config_invalid`; then resolve the pool (an injected `mysql2/promise` pool: the callback pool behind it).
 * @throws IngestError `config_invalid`
 * @internal
 */
export const parseMySqlEndpointOptions = endpointOptionsParser<MySqlPoolLike>({
  check: z.custom<MySqlPoolLike>(
    (v) => typeof (v as any)?.getConnection === 'function' || typeof (v as any)?.pool?.getConnection === 'function',
    { error: 'Expected `pool` to be a mysql2 pool (mysql2.createPool() or mysql2/promise)' },
  ),
  adopt: (pool: any) =>
    typeof pool.pool?.getConnection === 'function' && typeof pool.promise !== 'function' ? pool.pool : pool,
  own: (connectionString, max) => {
    const pool = mysql.createPool({
      ...parseMySqlConnectionString(connectionString),
      ...EXACT_POOL_OPTIONS,
      connectionLimit: max,
    });
    pool.on('error' as never, () => {});
    // mysql2 has no allowExitOnIdle: an idle connection's socket is unref'd, and ref'd again when checked out, so a
    // pool the endpoint built itself never keeps the host process alive once idle (a script that forgets close())
    pool.on('release' as never, (c: { stream?: { unref?(): void } }) => c.stream?.unref?.());
    pool.on('acquire' as never, (c: { stream?: { ref?(): void } }) => c.stream?.ref?.());
    return pool;
  },
});

/** End a pool, ignoring errors. @internal */
export function endPool(pool: MySqlPoolLike): Promise<void> {
  return new Promise((resolve) => {
    try {
      pool.end(() => resolve());
    } catch {
      resolve();
    }
  });
}

const broken = new WeakSet<object>();

/** A query's result: rows (or the OK packet) and field descriptions. */
export interface QueryResult {
  rows: any;
  fields: any[] | undefined;
}

/**
 * One checked-out connection with the library's session settings; `release()` restores the caller's settings (an
 * injected pool) or destroys the connection when it may be in a bad state.
 * @internal
 */
export class MySqlSession {
  #restore: { tz: string; mode: string; notes: number } | undefined;
  #broken = false;

  private constructor(readonly raw: any) {
    guardErrors(raw, () => broken.add(raw));
  }

  /** Check out a connection and apply the session settings. */
  static async open(
    pool: MySqlPoolLike,
    what: string,
    details: Record<string, unknown>,
    code: 'source_failed' | 'sink_failed' = 'source_failed',
  ): Promise<MySqlSession> {
    let raw: any;
    try {
      raw = await new Promise((resolve, reject) =>
        pool.getConnection((err: unknown, c: unknown) => (err ? reject(err) : resolve(c))),
      );
    } catch (err) {
      throw wrapMySqlError(err, code, `${what}: cannot connect to MySQL`, details);
    }
    const s = new MySqlSession(raw);
    try {
      const { rows } = await s.query(
        'SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode, @@session.sql_notes AS notes',
      );
      s.#restore = { tz: String(rows[0].tz), mode: String(rows[0].mode), notes: Number(rows[0].notes) };
      // sql_notes: a DECIMAL rounding extra decimals is only a note, which the sinks must see to refuse the row
      await s.query(`SET SESSION time_zone = '+00:00', sql_mode = '${SESSION_SQL_MODE}', sql_notes = 1`);
    } catch (err) {
      s.release(false);
      throw wrapMySqlError(err, code, `${what}: cannot prepare the MySQL session`, details);
    }
    return s;
  }

  /** Run one statement (values are escaped client side by mysql2). */
  query(sql: string, values?: unknown[], opts: Record<string, unknown> = {}): Promise<QueryResult> {
    return new Promise((resolve, reject) => {
      this.raw.query({ sql, values, ...opts }, (err: any, rows: any, fields: any) => {
        if (err) {
          if (err.fatal) this.#broken = true;
          reject(err);
        } else resolve({ rows, fields });
      });
    });
  }

  /** Stream the rows of a SELECT (object mode, with backpressure). */
  stream(sql: string, values: unknown[], typeCast: unknown, highWaterMark = 256): Readable {
    return this.raw.query({ sql, values, typeCast, rowsAsArray: true }).stream({ highWaterMark });
  }

  /** Mark the connection unusable (it is destroyed on release). */
  poison(): void {
    this.#broken = true;
  }

  /** Give the connection back: restored to the pool's settings when healthy, else destroyed. */
  release(healthy = true): void {
    if (!healthy || this.#broken || broken.has(this.raw) || this.raw._fatalError || !this.#restore) {
      try {
        this.raw.destroy();
      } catch {
        // already gone
      }
      return;
    }
    const r = this.#restore;
    const sql = 'SET SESSION time_zone = ?, sql_mode = ?, sql_notes = ?';
    this.raw.query({ sql, values: [r.tz, r.mode, r.notes] }, (err: unknown) => {
      if (err) this.raw.destroy();
      else this.raw.release();
    });
  }
}
