import { IngestError } from '../errors/ingest-error.js';

/** MySQL's and MariaDB's identifier limit, in characters (longer names are refused by the server). */
export const MAX_MYSQL_IDENTIFIER_CHARS = 64;

/**
 * A MySQL table address: database and table name, both unquoted.
 * @public
 */
export interface MySqlTableName {
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
 * import { quoteMySqlIdentifier } from '@nucleus/ingestion/mysql';
 * quoteMySqlIdentifier('we`ird'); // '`we``ird`'
 * ```
 * @throws IngestError `config_invalid` when the name is empty, contains NUL, ends with a space or exceeds 64 characters.
 * @public
 */
export function quoteMySqlIdentifier(name: string, what = 'identifier'): string {
  assertMySqlIdentifier(name, what);
  return `\`${name.replace(/`/g, '``')}\``;
}

/** Refuse names MySQL cannot store (empty, NUL, trailing space, over 64 characters). @internal */
export function assertMySqlIdentifier(name: string, what = 'identifier'): void {
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
  if (chars > MAX_MYSQL_IDENTIFIER_CHARS)
    fail(`is ${chars} characters long; MySQL allows at most ${MAX_MYSQL_IDENTIFIER_CHARS}`);
}

/**
 * `` `db`.`name` ``, both parts quoted.
 * @example
 * ```ts
 * import { mySqlQualifiedName } from '@nucleus/ingestion/mysql';
 * mySqlQualifiedName({ database: 'shop', name: 'orders' }); // '`shop`.`orders`'
 * ```
 * @throws IngestError `config_invalid` for names MySQL would refuse.
 * @public
 */
export function mySqlQualifiedName(t: MySqlTableName): string {
  return `${quoteMySqlIdentifier(t.database, 'database name')}.${quoteMySqlIdentifier(t.name, 'table name')}`;
}

/**
 * Parse a unit id or table reference `db.table`; either part may be backtick-quoted (`` `my.db`.`odd``name` ``).
 * An unquoted database ends at the first dot; the rest is the table name as is. Without a dot, `defaultDatabase`
 * is used when given.
 *
 * @example
 * ```ts
 * import { parseMySqlTableName } from '@nucleus/ingestion/mysql';
 * parseMySqlTableName('shop.orders'); // { database: 'shop', name: 'orders' }
 * ```
 * @throws IngestError `config_invalid` when there is no database part or a quoted part is unterminated.
 * @public
 */
export function parseMySqlTableName(ref: string, defaultDatabase?: string): MySqlTableName {
  const bad = (why: string) =>
    new IngestError('config_invalid', `${why} in ${JSON.stringify(ref)}`, { details: { unitId: ref } });
  if (typeof ref !== 'string' || !ref) throw bad('Expected a table reference');
  const [database, rest] = readPart(ref, 0, bad);
  if (rest === ref.length) {
    if (defaultDatabase !== undefined) {
      assertMySqlIdentifier(database, 'table name');
      return { database: defaultDatabase, name: database };
    }
    throw new IngestError('config_invalid', `Expected ${JSON.stringify(ref)} to be 'database.table'`, {
      details: { unitId: ref },
    });
  }
  if (ref[rest] !== '.') throw bad("Expected a '.' after the database");
  let name: string;
  if (ref[rest + 1] === '`') {
    const [n, end] = readPart(ref, rest + 1, bad);
    if (end !== ref.length) throw bad('Unexpected text after the table name');
    name = n;
  } else name = ref.slice(rest + 1);
  assertMySqlIdentifier(database, 'database name');
  assertMySqlIdentifier(name, 'table name');
  return { database, name };
}

function readPart(ref: string, i: number, bad: (why: string) => IngestError): [string, number] {
  if (ref[i] !== '`') {
    const dot = ref.indexOf('.', i);
    return dot < 0 ? [ref.slice(i), ref.length] : [ref.slice(i, dot), dot];
  }
  let out = '';
  let j = i + 1;
  while (j < ref.length) {
    if (ref[j] === '`') {
      if (ref[j + 1] === '`') {
        out += '`';
        j += 2;
        continue;
      }
      return [out, j + 1];
    }
    out += ref[j];
    j++;
  }
  throw bad('Unterminated quoted identifier');
}

/**
 * Format a table address as a unit id that {@link parseMySqlTableName} reads back (quoting only when needed).
 * @example
 * ```ts
 * import { formatMySqlTableName } from '@nucleus/ingestion/mysql';
 * formatMySqlTableName({ database: 'my db', name: 'orders' }); // '`my db`.orders'
 * ```
 * @public
 */
export function formatMySqlTableName(t: MySqlTableName): string {
  const part = (s: string) => (/^[A-Za-z0-9_$]+$/.test(s) ? s : `\`${s.replace(/`/g, '``')}\``);
  return `${part(t.database)}.${/^[^`]/.test(t.name) ? t.name : part(t.name)}`;
}
