import { type DriverErrorWrap, isSocketError, wrapDriverError } from '../sql/driver-errors.js';

/** Fields of a server error as `pg` reports them (structural: no dependency on pg's classes). */
export interface PgErrorFields {
  code?: string;
  message?: string;
  column?: string;
  where?: string;
}

const CONNECTION_SQLSTATE_CLASSES = ['08', '53', '57', '58'];
const LOST =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/**
 * Whether an error means the connection or the server failed (worth a retry), rather than the statement.
 * Node socket errors, `Connection terminated`, SQLSTATE classes 08 (connection), 53 (resources), 57 (operator
 * intervention, e.g. admin shutdown; not 57014, a cancelled statement), 58 (system error), and 40001/40P01
 * (serialization failure, deadlock).
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as PgErrorFields)?.code;
  if (code === '57014') return false;
  if (typeof code === 'string' && code.length === 5 && CONNECTION_SQLSTATE_CLASSES.includes(code.slice(0, 2)))
    return true;
  return code === '40001' || code === '40P01' || isSocketError(err, LOST);
}

/**
 * Wrap a database error as an IngestError with `code`; retryable when it is a connection failure.
 * The message keeps the server's text and SQLSTATE (never the connection string: IngestError scrubs it).
 */
export const wrapPgError: DriverErrorWrap = (err, code, message, details = {}) => {
  const s = (err as PgErrorFields)?.code;
  return wrapDriverError(err, code, message, {
    transient: isConnectionError(err),
    tag: typeof s === 'string' && s.length === 5 ? ` (SQLSTATE ${s})` : '',
    details: { ...details, ...(typeof s === 'string' && { sqlstate: s }) },
  });
};

/** The column named by a server error: its `column` field, or the `column x:` part of a COPY `where`. */
export function errorColumn(err: unknown): string | undefined {
  const e = err as PgErrorFields;
  if (typeof e?.column === 'string' && e.column) return e.column;
  const m = typeof e?.where === 'string' ? /column (.+?)(?::|$)/m.exec(e.where) : null;
  return m ? m[1] : undefined;
}

/** The input line of a COPY error (`COPY t, line 3, column c: …`). */
export function errorLine(err: unknown): number | undefined {
  const e = err as PgErrorFields;
  const m = typeof e?.where === 'string' ? /line (\d+)/.exec(e.where) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * SQLSTATE classes that mean "this row does not fit the target": 22 (data exception: bad value, too long,
 * out of range, invalid text), 23 (integrity: NOT NULL, check, foreign key, unique).
 */
export function isRowError(err: unknown): boolean {
  const code = (err as PgErrorFields)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
