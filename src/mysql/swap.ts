import { createHash } from 'node:crypto';
import { IngestError } from '../errors/ingest-error.js';
import type { SqlTable } from '../sql/dialect.js';
import type { LedgerSinkDialect } from '../sql/ledger-dialect.js';
import type { MySqlColumnInfo } from './catalog.js';
import type { MySqlSession } from './connection.js';
import { mySqlDialect } from './dialect.js';
import { MAX_IDENTIFIER_CHARS } from './identifiers.js';

const HASH_CHARS = 12;

/**
 * The table built beside `name` (`new`), or the old one while it is swapped out (`old`):
 * `_nucleus_<role>_<the name's start>_<12 hex of sha256(name)>`, at most 64 characters (MySQL's identifier limit)
 * whatever the target's name. The hash is of the whole name, so two targets never share one (their names may share
 * the start); the start says whose it is to someone reading the catalog after a crash.
 * @internal
 */
export function rebuildTableName(name: string, role: 'new' | 'old'): string {
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_CHARS);
  const room = MAX_IDENTIFIER_CHARS - `_nucleus_${role}__`.length - HASH_CHARS;
  return `_nucleus_${role}_${[...name].slice(0, room).join('')}_${hash}`;
}

/**
 * The name of the session lock (`GET_LOCK`) that serializes the rebuilds of one target, server-wide:
 * `nucleus_rebuild_` and the md5 of `database.table` (48 characters; MySQL allows 64).
 * @internal
 */
export function rebuildLockName(t: SqlTable): string {
  return `nucleus_rebuild_${createHash('md5').update(`${t.schema}.${t.name}`).digest('hex')}`;
}

/**
 * How the MySQL sink swaps a rebuilt table in for `replace` (docs/decisions/0013-schema-evolution.md, MySQL
 * amendment): MySQL's DDL commits implicitly, so the table is loaded and committed first, then swapped in by ONE
 * atomic `RENAME TABLE target TO old, new TO target`, the old table dropped, and the ledger rows written after.
 * Rebuilds of one target are serialized by a session lock held across those commits (`GET_LOCK`, released with the
 * connection when a process dies), waiting as long as a row lock does (`innodb_lock_wait_timeout`).
 * @internal
 */
export const mySqlSwap: NonNullable<LedgerSinkDialect<MySqlSession, MySqlColumnInfo>['swap']> = {
  name: rebuildTableName,
  statements(target, fresh) {
    const old = mySqlDialect.qualified({ schema: target.schema, name: rebuildTableName(target.name, 'old') });
    const t = mySqlDialect.qualified(target);
    return [`RENAME TABLE ${t} TO ${old}, ${mySqlDialect.qualified(fresh)} TO ${t}`, `DROP TABLE ${old}`];
  },
  async lock(s, target, what) {
    const table = mySqlDialect.format(target);
    const key = rebuildLockName(target);
    const { rows } = await s.query(
      'SELECT GET_LOCK(?, @@SESSION.innodb_lock_wait_timeout) AS got, @@SESSION.innodb_lock_wait_timeout AS wait',
      [key],
    );
    if (Number(rows[0].got) !== 1) {
      throw new IngestError(
        'sink_busy',
        `${what}: another importer is rebuilding ${table} for replace (it holds the session lock ${key}); waited ${rows[0].wait} s (innodb_lock_wait_timeout). The retry skips the run once that importer has loaded it, and rebuilds the table once its connection is gone`,
        { retryable: true, details: { table, lock: key } },
      );
    }
    try {
      await refuseForeignKeys(s, target, table, what);
    } catch (err) {
      await s.query('SELECT RELEASE_LOCK(?)', [key]).catch(() => s.poison());
      throw err;
    }
    return async () => void (await s.query('SELECT RELEASE_LOCK(?)', [key]));
  },
};

/**
 * Foreign keys of other tables referencing the target follow it to the old name on `RENAME` and then keep
 * `DROP TABLE` of the old one from running: refused before anything is built (`schema_conflict`, the target left as
 * it is). The target's own foreign keys (to itself or other tables) go with the old table.
 */
async function refuseForeignKeys(s: MySqlSession, target: SqlTable, table: string, what: string): Promise<void> {
  const { rows } = await s.query(
    `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CONSTRAINT_NAME AS name
       FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ? AND NOT (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?)
      ORDER BY 1, 2, 3`,
    [target.schema, target.name, target.schema, target.name],
  );
  const refs = (rows as Array<{ db: string; tbl: string; name: string }>).map(
    (r) => `${mySqlDialect.format({ schema: r.db, name: r.tbl })} (${r.name})`,
  );
  if (!refs.length) return;
  throw new IngestError(
    'schema_conflict',
    `${what}: replace would rebuild ${table} for the changed schema and swap it in, but foreign keys of other tables reference it: ${refs.join(', ')}; drop them (and re-create them after the run), or ALTER the target yourself`,
    { retryable: false, details: { table, foreignKeys: refs } },
  );
}
