import pg from 'pg';
import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { registerSecret } from '../errors/redact.js';
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

export const poolSchema = z.custom<PgPoolLike>(
  (v) =>
    v != null &&
    typeof v === 'object' &&
    typeof (v as any).connect === 'function' &&
    typeof (v as any).query === 'function',
  { error: 'Expected `pool` to be a pg.Pool (with connect() and query())' },
);

/** A connection string `pg` can connect with; anything else is `config_invalid` naming the field. */
export const connectionStringSchema = connectionStringField('connectionString');

/** The XOR rule: exactly one of connectionString and pool. */
export function connectionIssue(o: { connectionString?: unknown; pool?: unknown }): string | undefined {
  if (o.connectionString !== undefined && o.pool !== undefined)
    return 'Pass either `connectionString` or `pool`, not both';
  if (o.connectionString === undefined && o.pool === undefined) return 'Expected `connectionString` or `pool`';
  return undefined;
}

/**
 * Register the password of a connection string as a secret (scrubbed from every message), then build a pool the
 * endpoint owns. Pool errors on idle clients are swallowed (the next checkout reports them).
 */
export function ownPool(connectionString: string, max: number): PgPoolLike {
  try {
    const url = new URL(connectionString);
    if (url.password) registerSecret(decodeURIComponent(url.password));
  } catch {
    // key=value connection strings: scrub `password=…` through redact()
  }
  const pool = new pg.Pool({ connectionString, max });
  pool.on('error', () => {});
  return pool;
}

/** A pool the endpoint uses, and whether it must end it on close. */
export interface EndpointPool {
  pool: PgPoolLike;
  owned: boolean;
}

/**
 * Validate an endpoint's options once: its JSON config with `schema`, the injected pool, and the
 * connectionString-XOR-pool rule, reporting every issue in one `config_invalid`. Then resolve the pool.
 * @throws IngestError `config_invalid`
 */
export function parseEndpointOptions<C extends { connectionString?: string; maxConnections?: number }>(
  what: string,
  schema: z.ZodType<C>,
  options: (C & { pool?: PgPoolLike }) | undefined,
): { config: C; connection: EndpointPool } {
  const { pool, ...config } = options ?? ({} as C & { pool?: PgPoolLike });
  const issues = [...(schema.safeParse(config).error?.issues ?? [])];
  if (pool !== undefined)
    issues.push(...(poolSchema.safeParse(pool).error?.issues.map((i) => ({ ...i, path: ['pool'] })) ?? []));
  const xor = connectionIssue(options ?? {});
  if (xor) issues.push({ code: 'custom', path: [], message: xor, input: undefined } as z.core.$ZodIssue);
  if (issues.length) throw configInvalid(`Invalid ${what} options`, issues);
  const c = config as unknown as C;
  return {
    config: c,
    connection:
      pool === undefined
        ? { pool: ownPool(c.connectionString!, c.maxConnections ?? 4), owned: true }
        : { pool, owned: false },
  };
}

const guarded = new WeakSet<object>();

/**
 * A checked-out `pg` client emits `error` when its connection drops; without a listener that event would be an
 * uncaught exception in the host. The failure still reaches the caller through the pending query's rejection.
 * @internal
 */
export function guardClient<C extends { on(event: 'error', fn: (err: Error) => void): unknown }>(client: C): C {
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on('error', () => {});
  }
  return client;
}
