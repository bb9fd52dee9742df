import { IngestError } from '../errors/ingest-error.js';
import { splitQualifiedName } from '../sql/qualified-name.js';

/** MySQL's and MariaDB's identifier limit, in characters (longer names are refused by the server). @public */
export const MAX_IDENTIFIER_CHARS = 64;

/**
 * A MySQL table address: database and table name, both unquoted.
 * @public
 */
export interface TableName {
  /** The database (MySQL's "schema"). */
  database: string;
  /** The table or view name. */
  name: string;
}

/**
 * Quote one identifier for MySQL: wrap in backticks and double every embedded backtick.
 *
 * @example
 * ```ts
 * import { quoteIdentifier } from '@nucleus/ingestion/mysql';
 * quoteIdentifier('we`ird'); // '`we``ird`'
 * ```
 * @throws IngestError `config_invalid` when the name is empty, contains NUL, ends with a space or exceeds 64 characters.
 * @public
 */
export function quoteIdentifier(name: string, what = 'identifier'): string {
  assertIdentifier(name, what);
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * Refuse names MySQL cannot store (empty, NUL, trailing space, over 64 characters).
 * @example
 * ```ts
 * import { assertIdentifier } from '@nucleus/ingestion/mysql';
 * assertIdentifier('orders '); // throws: ends with a space
 * ```
 * @throws IngestError `config_invalid` naming the identifier.
 * @public
 */
export function assertIdentifier(name: string, what = 'identifier'): void {
  const fail = (why: string) => {
    throw new IngestError('config_invalid', `The ${what} ${JSON.stringify(name)} ${why}`, {
      details: { identifier: name },
    });
  };
  if (typeof name !== 'string' || name.length === 0)
    throw new IngestError('config_invalid', `Expected ${what} to be a non-empty string`, {
      details: { identifier: name },
    });
  if (name.includes('\u0000')) fail('contains a NUL character');
  if (name.endsWith(' ')) fail('ends with a space, which MySQL does not allow');
  const chars = [...name].length;
  if (chars > MAX_IDENTIFIER_CHARS) fail(`is ${chars} characters long; MySQL allows at most ${MAX_IDENTIFIER_CHARS}`);
}

/**
 * `` `db`.`name` ``, both parts quoted.
 * @example
 * ```ts
 * import { qualifiedName } from '@nucleus/ingestion/mysql';
 * qualifiedName({ database: 'shop', name: 'orders' }); // '`shop`.`orders`'
 * ```
 * @throws IngestError `config_invalid` for names MySQL would refuse.
 * @public
 */
export function qualifiedName(t: TableName): string {
  return `${quoteIdentifier(t.database, 'database name')}.${quoteIdentifier(t.name, 'table name')}`;
}

/**
 * Parse a unit id or table reference `db.table`; either part may be backtick-quoted (`` `my.db`.`odd``name` ``).
 * An unquoted database ends at the first dot; the rest is the table name as is. Without a dot, `defaultDatabase`
 * is used when given.
 *
 * @example
 * ```ts
 * import { parseTableName } from '@nucleus/ingestion/mysql';
 * parseTableName('shop.orders'); // { database: 'shop', name: 'orders' }
 * ```
 * @throws IngestError `config_invalid` when there is no database part or a quoted part is unterminated.
 * @public
 */
export function parseTableName(ref: string, defaultDatabase?: string): TableName {
  if (typeof ref !== 'string' || !ref)
    throw new IngestError('config_invalid', `Expected a table reference in ${JSON.stringify(ref)}`, {
      details: { unitId: ref },
    });
  const { first: database, name, defaulted } = splitQualifiedName(ref, '`', 'database', defaultDatabase);
  if (defaulted) {
    assertIdentifier(name, 'table name');
    return { database, name };
  }
  assertIdentifier(database, 'database name');
  assertIdentifier(name, 'table name');
  return { database, name };
}

/**
 * Format a table address as a unit id that {@link parseTableName} reads back (quoting only when needed).
 * @example
 * ```ts
 * import { formatTableName } from '@nucleus/ingestion/mysql';
 * formatTableName({ database: 'my db', name: 'orders' }); // '`my db`.orders'
 * ```
 * @public
 */
export function formatTableName(t: TableName): string {
  const part = (s: string) => (/^[A-Za-z0-9_$]+$/.test(s) ? s : `\`${s.replace(/`/g, '``')}\``);
  return `${part(t.database)}.${/^[^`]/.test(t.name) ? t.name : part(t.name)}`;
}

// The MySQL-prefixed names of 0.1, kept for one minor version (docs/decisions/0012-public-api-report.md).
/** @deprecated Use {@link MAX_IDENTIFIER_CHARS}; removed in 0.3. */
export const MAX_MYSQL_IDENTIFIER_CHARS = MAX_IDENTIFIER_CHARS;
/** @deprecated Use {@link TableName}; removed in 0.3. */
export type MySqlTableName = TableName;
/** @deprecated Use {@link quoteIdentifier}; removed in 0.3. */
export const quoteMySqlIdentifier: typeof quoteIdentifier = quoteIdentifier;
/** @deprecated Use {@link assertIdentifier}; removed in 0.3. @internal */
export const assertMySqlIdentifier: typeof assertIdentifier = assertIdentifier;
/** @deprecated Use {@link qualifiedName}; removed in 0.3. */
export const mySqlQualifiedName: typeof qualifiedName = qualifiedName;
/** @deprecated Use {@link parseTableName}; removed in 0.3. */
export const parseMySqlTableName: typeof parseTableName = parseTableName;
/** @deprecated Use {@link formatTableName}; removed in 0.3. */
export const formatMySqlTableName: typeof formatTableName = formatTableName;
