import { connectionStringField as sqlConnectionStringField } from '../sql/endpoint-options.js';

/**
 * Why a PostgreSQL connection string cannot be used, or `undefined` when it can. The string itself never appears in
 * the answer (it may hold a password).
 *
 * Accepted: a `postgres://` or `postgresql://` URL with a host (in the authority or as `?host=`), or a Unix socket
 * directory (`/var/run/postgresql dbname`) — what `pg` itself understands. Anything else (`postgresql//oops`,
 * `postgres://`, a `host=… dbname=…` keyword string, a port that is not a number) would otherwise be resolved by
 * `pg` against a placeholder host `base` and fail much later as a retryable network error.
 * @internal
 */
export function connectionStringProblem(value: string, field = 'connectionString'): string | undefined {
  const expected = `Expected \`${field}\` to be a postgres://user:password@host:port/database URL`;
  if (value.length === 0) return `${expected}, got an empty string`;
  if (value.startsWith('/')) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${expected}; it is not a valid URL`;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:' && url.protocol !== 'socket:') {
    return `${expected}; the scheme is not postgres:// or postgresql://`;
  }
  if (url.protocol === 'socket:') return url.pathname ? undefined : `${expected}; the socket path is missing`;
  if (!url.hostname && !url.searchParams.get('host')) return `${expected}; the host is missing`;
  if (url.port !== '' && !/^\d+$/.test(url.port)) return `${expected}; the port is not a number`;
  return undefined;
}

/**
 * zod schema of a connection string field: a string `pg` can connect with (see {@link connectionStringProblem}).
 * @internal
 */
export function connectionStringField(field = 'connectionString') {
  return sqlConnectionStringField(
    field,
    (value) => [connectionStringProblem(value, field) ?? []].flat(),
    'postgres://user:password@host:port/database',
  );
}
