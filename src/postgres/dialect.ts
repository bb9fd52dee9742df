import type { SqlDialect } from '../sql/dialect.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier } from './identifiers.js';
import { isConnectionError, isRowError, wrapPgError } from './pg-errors.js';

/**
 * PostgreSQL's answers to the neutral {@link SqlDialect} (docs/decisions/0009-one-sql-layer.md).
 * @internal
 */
export const postgresDialect: SqlDialect = {
  id: 'postgres',
  title: 'PostgreSQL',
  quote: quoteIdentifier,
  qualified: qualifiedName,
  format: formatTableName,
  parse: parseTableName,
  param: (i) => `$${i}`,
  isTransient: isConnectionError,
  isRowError,
  isUniqueViolation: (err) => (err as { code?: unknown })?.code === '23505',
  wrap: wrapPgError,
};
