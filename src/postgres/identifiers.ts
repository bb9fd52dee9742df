import { IngestError } from '../errors/ingest-error.js';
import { splitQualifiedName } from '../sql/qualified-name.js';

/** PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes of UTF-8. Longer names are truncated silently by the server. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Quote one identifier for SQL: wrap in double quotes and double every embedded double quote.
 *
 * @example
 * ```ts
 * import { quoteIdentifier } from '@nucleus/ingestion/postgres';
 * quoteIdentifier('we"ird'); // '"we""ird"'
 * ```
 * @throws IngestError `config_invalid` when the name is empty, contains NUL, or exceeds 63 bytes.
 * @public
 */
export function quoteIdentifier(name: string, what = 'identifier'): string {
  assertIdentifier(name, what);
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Refuse names PostgreSQL would truncate or cannot store (empty, NUL, over 63 bytes).
 * @example
 * ```ts
 * import { assertIdentifier } from '@nucleus/ingestion/postgres';
 * assertIdentifier('é'.repeat(32), 'column name'); // throws: 64 bytes
 * ```
 * @throws IngestError `config_invalid` naming the identifier.
 * @public
 */
export function assertIdentifier(name: string, what = 'identifier'): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new IngestError('config_invalid', `Expected ${what} to be a non-empty string`, {
      details: { identifier: name },
    });
  }
  if (name.includes('\u0000')) {
    throw new IngestError('config_invalid', `The ${what} ${JSON.stringify(name)} contains a NUL character`, {
      details: { identifier: name },
    });
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new IngestError(
      'config_invalid',
      `The ${what} ${JSON.stringify(name)} is ${bytes} bytes long; PostgreSQL allows at most ${MAX_IDENTIFIER_BYTES} and would truncate it silently`,
      { details: { identifier: name, bytes } },
    );
  }
}

/** A table address: schema and name, both unquoted. @public */
export interface TableName {
  schema: string;
  name: string;
}

/**
 * `"schema"."name"`, both parts quoted.
 * @example
 * ```ts
 * import { qualifiedName } from '@nucleus/ingestion/postgres';
 * qualifiedName({ schema: 'public', name: 'a"b' }); // '"public"."a""b"'
 * ```
 * @throws IngestError `config_invalid` for names over 63 bytes.
 * @public
 */
export function qualifiedName(t: TableName): string {
  return `${quoteIdentifier(t.schema, 'schema name')}.${quoteIdentifier(t.name, 'table name')}`;
}

/**
 * Parse a unit id or table reference: `schema.table`, where either part may be double-quoted
 * (`"my.schema"."odd""name"`). An unquoted schema ends at the first dot; the rest is the table name as is.
 *
 * @example
 * ```ts
 * import { parseTableName } from '@nucleus/ingestion/postgres';
 * parseTableName('public.orders');            // { schema: 'public', name: 'orders' }
 * parseTableName('"a.b"."c""d"');             // { schema: 'a.b', name: 'c"d' }
 * ```
 * @throws IngestError `config_invalid` when there is no schema part or a quoted part is unterminated.
 * @public
 */
export function parseTableName(ref: string, defaultSchema?: string): TableName {
  const { first: schema, name, defaulted } = splitQualifiedName(ref, '"', 'schema', defaultSchema);
  if (defaulted) return { schema, name };
  assertIdentifier(schema, 'schema name');
  assertIdentifier(name, 'table name');
  return { schema, name };
}

/**
 * Format a table address as a unit id that {@link parseTableName} reads back (quoting only when needed).
 * @example
 * ```ts
 * import { formatTableName } from '@nucleus/ingestion/postgres';
 * formatTableName({ schema: 'my schema', name: 'orders' }); // '"my schema".orders'
 * ```
 * @public
 */
export function formatTableName(t: TableName): string {
  const part = (s: string) => (/^[A-Za-z_][A-Za-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
  return `${part(t.schema)}.${/^[^"]/.test(t.name) ? t.name : part(t.name)}`;
}
