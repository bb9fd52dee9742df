import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { registerSecret } from '../errors/redact.js';

/** A pool an endpoint uses, and whether it must end it on close. @internal */
export interface SqlEndpointPool<P> {
  pool: P;
  owned: boolean;
}

/** How one driver's pools are checked when injected, adopted and built. @internal */
export interface SqlPoolDriver<P> {
  /** Checks an injected pool (its issues are reported under `pool`). */
  check: z.ZodType<P>;
  /** The pool to use for an injected one (e.g. the callback pool behind a promise pool); the pool itself when absent. */
  adopt?(pool: P): P;
  /** Build a pool the endpoint owns: the password registered as a secret, errors on idle connections swallowed. */
  own(connectionString: string, maxConnections: number): P;
}

/**
 * The endpoint-options parser of one driver. It validates an endpoint's options once: its JSON config with `schema`,
 * the injected pool, and the connectionString-XOR-pool rule, reporting every issue in one `config_invalid`; then
 * resolves the pool (an owned one has `maxConnections`, default 4).
 * @internal
 */
export function endpointOptionsParser<P>(driver: SqlPoolDriver<P>) {
  return <C extends { connectionString?: string; maxConnections?: number }>(
    what: string,
    schema: z.ZodType<C>,
    options: (C & { pool?: P }) | undefined,
  ): { config: C; connection: SqlEndpointPool<P> } => {
    const { pool, ...config } = options ?? ({} as C & { pool?: P });
    const issues = [...(schema.safeParse(config).error?.issues ?? [])];
    if (pool !== undefined)
      issues.push(...(driver.check.safeParse(pool).error?.issues.map((i) => ({ ...i, path: ['pool'] })) ?? []));
    const given = [options?.connectionString, pool].filter((v) => v !== undefined).length;
    const xor = given ? 'Pass either `connectionString` or `pool`, not both' : 'Expected `connectionString` or `pool`';
    if (given !== 1) issues.push({ code: 'custom', path: [], message: xor, input: undefined } as z.core.$ZodIssue);
    if (issues.length) throw configInvalid(`Invalid ${what} options`, issues);
    const c = config as unknown as C;
    if (pool !== undefined) return { config: c, connection: { pool: driver.adopt?.(pool) ?? pool, owned: false } };
    return { config: c, connection: { pool: driver.own(c.connectionString!, c.maxConnections ?? 4), owned: true } };
  };
}

/**
 * Register the password of a URL connection string as a secret, scrubbed from every message (`key=value` strings and
 * socket paths are left to redact()).
 * @internal
 */
export function registerUrlPassword(connectionString: string): void {
  try {
    const url = new URL(connectionString);
    if (url.password) registerSecret(decodeURIComponent(url.password));
  } catch {
    // not a URL: nothing to register
  }
}

/**
 * zod schema of a connection string field: a string in which `problems` finds nothing wrong, declared secret
 * (`writeOnly`: registered and never reported). Each problem is one issue naming the field.
 * @internal
 */
export function connectionStringField(field: string, problems: (s: string) => readonly string[], url: string) {
  return z
    .string({ error: `Expected \`${field}\` to be a string` })
    .superRefine((value, ctx) => {
      for (const message of problems(value)) ctx.addIssue({ code: 'custom', message });
    })
    .meta({ writeOnly: true, description: `${url} (a secret: never reported)` });
}

const guarded = new WeakSet<object>();

/**
 * Listen once for `error` on a driver's connection or client, however often it is checked out: without a listener a
 * dropped connection's `error` event would be an uncaught exception in the host. The failure still reaches the caller
 * through the pending query's rejection; `onError` may note it.
 * @internal
 */
export function guardErrors<C extends { on?(event: 'error', fn: (err: Error) => void): unknown }>(
  client: C,
  onError: (err: Error) => void = () => {},
): C {
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on?.('error', onError);
  }
  return client;
}
