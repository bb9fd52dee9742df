import type { ChangeApplyDialect, ChangeBarrier, ChangeTarget } from '../sql/change-dialect.js';
import type { MySqlColumnInfo } from './catalog.js';
import type { MySqlSession } from './connection.js';
import { quoteIdentifier } from './identifiers.js';

const STAGE = '_nucleus_changes';
const LAST = '_nucleus_last';
const MAX = { lsn: 9223372036854775807n, seq: 2147483647, op: '' };
const MIN = { lsn: -1n, seq: -1, op: '' };

const meta = (name: string, dataType: string, columnType: string, kind: MySqlColumnInfo['kind']): MySqlColumnInfo => ({
  name,
  dataType,
  columnType,
  kind,
  unsigned: false,
  nullable: true,
  autoIncrement: false,
  ...(dataType === 'datetime' && { fsp: 6 }),
});

const META: MySqlColumnInfo[] = [
  meta('_op', 'varchar', 'varchar(16)', 'string'),
  meta('_lsn', 'bigint', 'bigint(20)', 'bigint'),
  meta('_seq', 'int', 'int(11)', 'int'),
  meta('_commit_ts', 'datetime', 'datetime(6)', 'datetime'),
  meta('_unchanged', 'longtext', 'longtext', 'json'),
  meta('_old_key', 'longtext', 'longtext', 'json'),
];

const q = (n: string) => quoteIdentifier(n);
const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
const between = () => '(_lsn, _seq) > (?, ?) AND (_lsn, _seq) < (?, ?)';
const bounds = (from?: ChangeBarrier, to?: ChangeBarrier) => {
  const a = from ?? MIN;
  const b = to ?? MAX;
  return [a.lsn.toString(), a.seq, b.lsn.toString(), b.seq];
};
/** Whether the JSON array `col` holds the column name `name`. */
const has = (col: string, name: string) => `coalesce(JSON_CONTAINS(${col}, JSON_QUOTE(${lit(name)})), 0) = 1`;
const affected = (r: unknown) => Number((r as { rows?: { affectedRows?: number } })?.rows?.affectedRows ?? 0);

/**
 * MySQL / MariaDB statements for applying change rows (docs/decisions/0015-postgres-cdc.md): temporary tables (each
 * named once per statement: a temporary table cannot be opened twice in one), `ROW_NUMBER()` for the last change of a
 * key, `JSON_CONTAINS` for unchanged TOASTed columns, `ON DUPLICATE KEY UPDATE` upserts, multi-table `UPDATE`/`DELETE`.
 * @internal
 */
export function mySqlChangeApply(): ChangeApplyDialect<MySqlSession, MySqlColumnInfo> {
  return {
    stageTable: STAGE,
    metaColumns: () => META,
    async createStage(s, t) {
      // every column declared (and nullable: a delete carries only its key, a truncate nothing) — no ALTER TABLE,
      // which would commit the slice's transaction implicitly
      const cols = t.columns.map(
        (c) =>
          `${q(c.name)} ${c.columnType}${c.charset ? ` CHARACTER SET ${c.charset}` : ''}${c.collation ? ` COLLATE ${c.collation}` : ''} NULL`,
      );
      await s.query(`DROP TEMPORARY TABLE IF EXISTS ${STAGE}`);
      await s.query(
        `CREATE TEMPORARY TABLE ${STAGE} (${cols.join(', ')}, _op VARCHAR(16) NULL, _lsn BIGINT NULL, _seq INT NULL, _commit_ts DATETIME(6) NULL, _unchanged LONGTEXT NULL, _old_key LONGTEXT NULL) ENGINE=InnoDB`,
      );
    },
    async dropStage(s) {
      await s.query(`DROP TEMPORARY TABLE IF EXISTS ${STAGE}`);
    },
    async barriers(s) {
      const { rows } = await s.query(
        `SELECT CAST(_lsn AS CHAR) AS lsn, _seq AS seq, _op AS op FROM ${STAGE} WHERE _op = 'truncate' OR _old_key IS NOT NULL ORDER BY _lsn, _seq`,
      );
      return (rows as Array<{ lsn: string; seq: number; op: string }>).map((x) => ({
        lsn: BigInt(x.lsn),
        seq: Number(x.seq),
        op: x.op,
      }));
    },
    async applySegment(s, t, from, to) {
      const keys = t.keys.map(q);
      const cols = t.columns.map((c) => q(c.name));
      const rest = t.columns.filter((c) => !t.keys.includes(c.name)).map((c) => q(c.name));
      const p = bounds(from, to);
      const onKey = (a: string, b: string) => t.keys.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
      await s.query(`DROP TEMPORARY TABLE IF EXISTS ${LAST}`);
      await s.query(
        `CREATE TEMPORARY TABLE ${LAST} ENGINE=InnoDB SELECT * FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY ${keys.join(', ')} ORDER BY _lsn DESC, _seq DESC) AS _nucleus_rn FROM ${STAGE} c WHERE ${between()} AND _op <> 'truncate') x WHERE _nucleus_rn = 1`,
        p,
      );
      const { rows } = await s.query(
        `SELECT DISTINCT _unchanged AS u FROM ${LAST} WHERE _op <> 'delete' AND _unchanged IS NOT NULL`,
      );
      const names = new Set<string>();
      for (const r of rows as Array<{ u: string }>) for (const n of JSON.parse(r.u) as string[]) names.add(n);
      for (const c of names) {
        if (!t.columns.some((x) => x.name === c)) continue;
        await s.query(
          `UPDATE ${LAST} l JOIN (SELECT * FROM (SELECT ${keys.join(', ')}, ${q(c)}, ROW_NUMBER() OVER (PARTITION BY ${keys.join(', ')} ORDER BY _lsn DESC, _seq DESC) AS rn
             FROM ${STAGE} WHERE ${between()} AND _op IN ('insert', 'update') AND NOT ${has('_unchanged', c)}) y WHERE rn = 1) e ON ${onKey('e', 'l')}
           SET l.${q(c)} = e.${q(c)}, l._unchanged = JSON_REMOVE(l._unchanged, JSON_UNQUOTE(JSON_SEARCH(l._unchanged, 'one', ${lit(c)})))
           WHERE l._op <> 'delete' AND ${has('l._unchanged', c)}`,
          p,
        );
      }
      await s.query(`UPDATE ${LAST} SET _unchanged = NULL WHERE JSON_LENGTH(_unchanged) = 0`);
      const soft = t.deletes === 'soft';
      if (soft) {
        await s.query(
          `UPDATE ${t.targetSql} t JOIN ${LAST} l ON ${onKey('t', 'l')} SET t._deleted_at = l._commit_ts, t._op = 'delete', t._lsn = l._lsn WHERE l._op = 'delete'`,
        );
      } else {
        await s.query(`DELETE t FROM ${t.targetSql} t JOIN ${LAST} l ON ${onKey('t', 'l')} WHERE l._op = 'delete'`);
      }
      const extraCols = soft ? ', _deleted_at, _op, _lsn' : '';
      const extraVals = soft ? ', NULL, _op, _lsn' : '';
      const set = [
        ...rest.map((c) => `${c} = VALUES(${c})`),
        ...(soft ? ['_deleted_at = NULL', '_op = VALUES(_op)', '_lsn = VALUES(_lsn)'] : []),
      ];
      await s.query(
        `INSERT INTO ${t.targetSql} (${cols.join(', ')}${extraCols}) SELECT ${cols.join(', ')}${extraVals} FROM ${LAST} WHERE _op <> 'delete' AND _unchanged IS NULL
         ON DUPLICATE KEY UPDATE ${(set.length ? set : [`${keys[0]} = VALUES(${keys[0]})`]).join(', ')}`,
      );
      const partialSet = [
        ...t.columns
          .filter((c) => !t.keys.includes(c.name))
          .map((c) => `t.${q(c.name)} = IF(${has('l._unchanged', c.name)}, t.${q(c.name)}, l.${q(c.name)})`),
        ...(soft ? ['t._deleted_at = NULL', 't._op = l._op', 't._lsn = l._lsn'] : []),
      ];
      if (partialSet.length) {
        await s.query(
          `UPDATE ${t.targetSql} t JOIN ${LAST} l ON ${onKey('t', 'l')} SET ${partialSet.join(', ')} WHERE l._op <> 'delete' AND l._unchanged IS NOT NULL`,
        );
      }
      await s.query(`DROP TEMPORARY TABLE ${LAST}`);
    },
    async applyBarrier(s, t, b, truncate) {
      if (b.op === 'truncate') {
        if (truncate === 'ignore') return;
        if (t.deletes === 'soft')
          await s.query(
            `UPDATE ${t.targetSql} SET _deleted_at = UTC_TIMESTAMP(6), _op = 'truncate', _lsn = ? WHERE _deleted_at IS NULL`,
            [b.lsn.toString()],
          );
        else await s.query(`DELETE FROM ${t.targetSql}`);
        return;
      }
      const soft = t.deletes === 'soft';
      const set = [
        ...t.columns.map((c) => `t.${q(c.name)} = IF(${has('x._unchanged', c.name)}, t.${q(c.name)}, x.${q(c.name)})`),
        ...(soft ? ['t._deleted_at = NULL', 't._op = x._op', 't._lsn = x._lsn'] : []),
      ];
      const oldKey = t.keys
        .map((k) => `t.${q(k)} = JSON_UNQUOTE(JSON_EXTRACT(x._old_key, ${lit(`$."${k.replace(/"/g, '\\"')}"`)}))`)
        .join(' AND ');
      const moved = await s.query(
        `UPDATE ${t.targetSql} t JOIN ${STAGE} x ON x._lsn = ? AND x._seq = ? AND ${oldKey} SET ${set.join(', ')}`,
        [b.lsn.toString(), b.seq],
      );
      if (affected(moved)) return;
      const cols = t.columns.map((c) => q(c.name));
      const rest = t.columns.filter((c) => !t.keys.includes(c.name)).map((c) => q(c.name));
      await s.query(
        `INSERT INTO ${t.targetSql} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ${STAGE} WHERE _lsn = ? AND _seq = ? AND _unchanged IS NULL
         ON DUPLICATE KEY UPDATE ${(rest.length ? rest : cols.slice(0, 1)).map((c) => `${c} = VALUES(${c})`).join(', ')}`,
        [b.lsn.toString(), b.seq],
      );
    },
    async ensureSoftDeleteColumns(s, targetSql) {
      await s.query(
        `ALTER TABLE ${targetSql} ADD COLUMN IF NOT EXISTS _deleted_at DATETIME(6) NULL, ADD COLUMN IF NOT EXISTS _op VARCHAR(16) NULL, ADD COLUMN IF NOT EXISTS _lsn BIGINT NULL`,
      );
    },
  };
}

export type { ChangeTarget };
