import type { SqlDialect, SqlTable } from '../sql/dialect.js';
import { isMySqlConnectionError, isMySqlRowError, wrapMySqlError } from './errors.js';
import {
  formatMySqlTableName,
  type MySqlTableName,
  mySqlQualifiedName,
  parseMySqlTableName,
  quoteMySqlIdentifier,
} from './identifiers.js';

const toMySql = (t: SqlTable): MySqlTableName => ({ database: t.schema, name: t.name });

/**
 * MySQL's and MariaDB's answers to the neutral {@link SqlDialect} (docs/decisions/0009-one-sql-layer.md): a
 * neutral table's `schema` is the MySQL database.
 * @internal
 */
export const mySqlDialect: SqlDialect = {
  id: 'mysql',
  title: 'MySQL',
  quote: quoteMySqlIdentifier,
  qualified: (t) => mySqlQualifiedName(toMySql(t)),
  format: (t) => formatMySqlTableName(toMySql(t)),
  parse: (ref, defaultSchema) => {
    const t = parseMySqlTableName(ref, defaultSchema);
    return { schema: t.database, name: t.name };
  },
  param: () => '?',
  isTransient: isMySqlConnectionError,
  isRowError: isMySqlRowError,
  isUniqueViolation: (err) => (err as { errno?: unknown })?.errno === 1062,
  wrap: wrapMySqlError,
};
