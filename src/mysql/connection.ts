import type { Readable } from 'node:stream';
import mysql from 'mysql2';
import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { registerSecret } from '../errors/redact.js';
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
  const url = new URL(text);
  if (url.password) registerSecret(decodeURIComponent(url.password));
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

export const mySqlConnectionStringSchema = z
  .string({ error: 'Expected `connectionString` to be a string' })
  .min(1, { error: 'Expected `connectionString` to be non-empty' })
  .superRefine((s, ctx) => {
    for (const message of mySqlConnectionStringIssues(s)) ctx.addIssue({ code: 'custom', message });
  });

export const mySqlPoolSchema = z.custom<MySqlPoolLike>(
  (v) =>
    v != null &&
    typeof v === 'object' &&
    (typeof (v as any).getConnection === 'function' || typeof (v as any).pool?.getConnection === 'function'),
  { error: 'Expected `pool` to be a mysql2 pool (mysql2.createPool() or mysql2/promise)' },
);

/** The callback pool behind a callback or promise pool. */
function corePool(pool: MySqlPoolLike): MySqlPoolLike {
  const inner = (pool as { pool?: MySqlPoolLike }).pool;
  // a mysql2/promise pool: getConnection() returns a promise and the core pool is `.pool`
  if (inner && typeof inner.getConnection === 'function' && typeof (pool as any).promise !== 'function') return inner;
  return pool;
}

/** A pool the endpoint uses, and whether it must end it on close. @internal */
export interface MySqlEndpointPool {
  pool: MySqlPoolLike;
  owned: boolean;
}

/**
 * Validate an endpoint's options once (JSON config, injected pool, connectionString XOR pool), reporting every
 * issue in one `config_invalid`; then resolve the pool.
 * @throws IngestError `config_invalid`
 * @internal
 */
export function parseMySqlEndpointOptions<C extends { connectionString?: string; maxConnections?: number }>(
  what: string,
  schema: z.ZodType<C>,
  options: (C & { pool?: MySqlPoolLike }) | undefined,
): { config: C; connection: MySqlEndpointPool } {
  const { pool, ...config } = options ?? ({} as C & { pool?: MySqlPoolLike });
  const issues = [...(schema.safeParse(config).error?.issues ?? [])];
  if (pool !== undefined)
    issues.push(...(mySqlPoolSchema.safeParse(pool).error?.issues.map((i) => ({ ...i, path: ['pool'] })) ?? []));
  const o = (options ?? {}) as { connectionString?: unknown; pool?: unknown };
  const xor =
    o.connectionString !== undefined && o.pool !== undefined
      ? 'Pass either `connectionString` or `pool`, not both'
      : o.connectionString === undefined && o.pool === undefined
        ? 'Expected `connectionString` or `pool`'
        : undefined;
  if (xor) issues.push({ code: 'custom', path: [], message: xor, input: undefined } as z.core.$ZodIssue);
  if (issues.length) throw configInvalid(`Invalid ${what} options`, issues);
  const c = config as unknown as C;
  if (pool !== undefined) return { config: c, connection: { pool: corePool(pool), owned: false } };
  const p = mysql.createPool({
    ...parseMySqlConnectionString(c.connectionString!),
    ...EXACT_POOL_OPTIONS,
    connectionLimit: c.maxConnections ?? 4,
  });
  p.on('error' as never, () => {});
  return { config: c, connection: { pool: p, owned: true } };
}

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

const guarded = new WeakSet<object>();
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
  #restore: { tz: string; mode: string } | undefined;
  #broken = false;

  private constructor(readonly raw: any) {
    // one listener per connection, however often it is checked out: an 'error' without a listener would be an
    // uncaught exception in the host; the failure still reaches the caller through the pending query
    if (!guarded.has(raw)) {
      guarded.add(raw);
      raw.on?.('error', () => broken.add(raw));
    }
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
      const { rows } = await s.query('SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode');
      s.#restore = { tz: String(rows[0].tz), mode: String(rows[0].mode) };
      await s.query(`SET SESSION time_zone = '+00:00', sql_mode = '${SESSION_SQL_MODE}'`);
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
    this.raw.query({ sql: 'SET SESSION time_zone = ?, sql_mode = ?', values: [r.tz, r.mode] }, (err: unknown) => {
      if (err) this.raw.destroy();
      else this.raw.release();
    });
  }
}
