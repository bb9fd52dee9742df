import { type DriverErrorWrap, isSocketError, wrapDriverError } from '../sql/driver-errors.js';

/** Fields of a server or driver error as mysql2 reports them (structural). */
export interface MySqlErrorFields {
  code?: string;
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  message?: string;
  fatal?: boolean;
}

/** Server errors that mean "try again": lock wait timeout, deadlock, too many connections, server shutdown, read-only. */
const RETRYABLE_ERRNO = new Set([
  1205, 1213, 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, 2002,
  2003, 2006, 2013, 2055, 1927, 4031,
]);

const LOST =
  /Connection lost|Pool is closed|Can't add new command when connection is in closed state|connect ETIMEDOUT/i;

/**
 * Whether an error means the connection or the server failed (worth a retry), rather than the statement:
 * Node socket errors, mysql2's `PROTOCOL_*` / fatal errors, lost connections, deadlocks and lock wait timeouts.
 * @internal
 */
export function isMySqlConnectionError(err: unknown): boolean {
  const e = err as MySqlErrorFields;
  if (typeof e?.code === 'string' && e.code.startsWith('PROTOCOL_')) return true;
  return (
    (typeof e?.errno === 'number' && RETRYABLE_ERRNO.has(e.errno)) || e?.fatal === true || isSocketError(err, LOST)
  );
}

/**
 * Wrap a database error as an IngestError with `code`; retryable when it is a connection failure.
 * @internal
 */
export const wrapMySqlError: DriverErrorWrap = (err, code, message, details = {}) => {
  const { code: c, errno } = (err ?? {}) as MySqlErrorFields;
  const n = typeof errno === 'number' ? errno : undefined;
  return wrapDriverError(err, code, message, {
    transient: isMySqlConnectionError(err),
    tag: typeof c === 'string' ? ` (${c}${n === undefined ? '' : ` ${n}`})` : '',
    details: { ...details, ...(typeof c === 'string' && { mysqlCode: c }), ...(n !== undefined && { errno: n }) },
  });
};

/**
 * Server errors that mean "this row does not fit the target": out of range, truncated, incorrect value, too long,
 * NOT NULL, duplicate key, foreign key, check constraint.
 */
const ROW_ERRNO = new Set([
  1048, 1062, 1216, 1217, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1451, 1452, 1690, 3819, 4025, 4078, 1105,
]);

/** Whether the error is about the data of a row. @internal */
export function isMySqlRowError(err: unknown): boolean {
  const e = err as MySqlErrorFields;
  if (typeof e?.errno === 'number' && ROW_ERRNO.has(e.errno) && e.errno !== 1105) return true;
  return /^22|^23/.test(e?.sqlState ?? '');
}

/** `for column 'x' at row 3` → { column: 'x', row: 3 }. @internal */
export function mySqlErrorPosition(text: string | undefined): { column?: string; row?: number } {
  if (!text) return {};
  // MariaDB names the column `db`.`table`.`column`: the last part is the column
  const col = /column '((?:[^']|'')*)'/i.exec(text) ?? /column (?:`(?:[^`]|``)*`\.)*`((?:[^`]|``)*)`/i.exec(text);
  const row = /at row (\d+)/i.exec(text);
  const out: { column?: string; row?: number } = {};
  if (col) out.column = col[1].includes('`') ? col[1].replace(/``/g, '`') : col[1].replace(/''/g, "'");
  if (row) out.row = Number(row[1]);
  return out;
}
