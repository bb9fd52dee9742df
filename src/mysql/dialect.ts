import type { SqlDialect, SqlTable } from '../sql/dialect.js';
import { isMySqlConnectionError, isMySqlRowError, wrapMySqlError } from './errors.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier, type TableName } from './identifiers.js';

const toMySql = (t: SqlTable): TableName => ({ database: t.schema, name: t.name });

/**
 * MySQL's and MariaDB's answers to the neutral {@link SqlDialect} (docs/decisions/0009-one-sql-layer.md): a
 * neutral table's `schema` is the MySQL database.
 * @internal
 */
export const mySqlDialect: SqlDialect = {
  id: 'mysql',
  title: 'MySQL',
  quote: quoteIdentifier,
  qualified: (t) => qualifiedName(toMySql(t)),
  format: (t) => formatTableName(toMySql(t)),
  parse: (ref, defaultSchema) => {
    const t = parseTableName(ref, defaultSchema);
    return { schema: t.database, name: t.name };
  },
  param: () => '?',
  isTransient: isMySqlConnectionError,
  isRowError: isMySqlRowError,
  isUniqueViolation: (err) => (err as { errno?: unknown })?.errno === 1062,
  wrap: wrapMySqlError,
};
