import pg from 'pg';
import { z } from 'zod';
import {
  endpointOptionsParser,
  guardErrors,
  registerUrlPassword,
  type SqlEndpointPool,
} from '../sql/endpoint-options.js';
import { connectionStringField } from './connection-string.js';

/**
 * The part of a `pg.Pool` the endpoints use (structural, so any pg-compatible pool fits).
 * @public
 */
export interface PgPoolLike {
  /** Check out a client (released by the endpoint when done). */
  connect(): Promise<pg.PoolClient>;
  /** Run one statement on any client of the pool. */
  query(text: string, values?: unknown[]): Promise<pg.QueryResult<any>>;
  /** Close every client; called on `close()` only for a pool the endpoint built itself. */
  end(): Promise<void>;
}

/** A connection string `pg` can connect with; anything else is `config_invalid` naming the field. */
export const connectionStringSchema = connectionStringField('connectionString');

/** A pool the endpoint uses, and whether it must end it on close. */
export type EndpointPool = SqlEndpointPool<PgPoolLike>;

/**
 * Validate a PostgreSQL endpoint's options once (JSON config, injected `pg` pool, connectionString XOR pool) in one
 * `config_invalid`; then resolve the pool.
 * @throws IngestError `config_invalid`
 */
export const parseEndpointOptions = endpointOptionsParser<PgPoolLike>({
  check: z.custom<PgPoolLike>(
    (v) => typeof (v as PgPoolLike)?.connect === 'function' && typeof (v as PgPoolLike).query === 'function',
    { error: 'Expected `pool` to be a pg.Pool (with connect() and query())' },
  ),
  own: (connectionString, max) => {
    registerUrlPassword(connectionString);
    // a pool the endpoint built itself never keeps the host process alive once idle (a script that forgets close())
    const pool = new pg.Pool({ connectionString, max, allowExitOnIdle: true });
    pool.on('error', () => {});
    return pool;
  },
});

/**
 * A checked-out `pg` client emits `error` when its connection drops; without a listener that event would be an
 * uncaught exception in the host. The failure still reaches the caller through the pending query's rejection.
 * @internal
 */
export const guardClient = guardErrors;
