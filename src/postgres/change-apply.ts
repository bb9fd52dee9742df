import type { ChangeApplyDialect, ChangeBarrier, ChangeTarget } from '../sql/change-apply.js';
import type { LedgerSession } from '../sql/ledger-dialect.js';
import type { ColumnInfo } from './catalog.js';
import { quoteIdentifier } from './identifiers.js';

const STAGE = 'pg_temp._nucleus_changes';
const LAST = 'pg_temp._nucleus_last';
const MAX = { lsn: 9223372036854775807n, seq: 2147483647, op: '' };
const MIN = { lsn: -1n, seq: -1, op: '' };

const meta = (name: string, typname: string, typid: number, typcategory: string): ColumnInfo => ({
  name,
  typname,
  typid,
  typcategory,
  typelem: 0,
  nullable: true,
  formatted: typname,
  declared: typname,
  basetype: typname,
});

const META: ColumnInfo[] = [
  meta('_op', 'text', 25, 'S'),
  meta('_lsn', 'int8', 20, 'N'),
  meta('_seq', 'int4', 23, 'N'),
  meta('_commit_ts', 'timestamptz', 1184, 'D'),
  meta('_unchanged', 'jsonb', 3802, 'U'),
  meta('_old_key', 'jsonb', 3802, 'U'),
];

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const q = (n: string) => quoteIdentifier(n);

/** `(_lsn, _seq)` strictly between two barriers, as SQL with parameters $1..$4. */
const between = (prefix = '') =>
  `(${prefix}_lsn, ${prefix}_seq) > ($1::int8, $2::int4) AND (${prefix}_lsn, ${prefix}_seq) < ($3::int8, $4::int4)`;
const bounds = (from?: ChangeBarrier, to?: ChangeBarrier) => {
  const a = from ?? MIN;
  const b = to ?? MAX;
  return [a.lsn.toString(), a.seq, b.lsn.toString(), b.seq];
};

/**
 * PostgreSQL's statements for applying change rows (docs/decisions/0015-postgres-cdc.md): a transaction-scoped stage
 * with the change fields, `DISTINCT ON (key)` for the last change of a key, `jsonb ?` for unchanged TOASTed columns,
 * `ON CONFLICT` upserts, `UPDATE … FROM` for partial rows and key moves.
 * @internal
 */
export function pgChangeApply<S extends LedgerSession>(): ChangeApplyDialect<S, ColumnInfo> {
  return {
    stageTable: STAGE,
    metaColumns: () => META,
    async createStage(s, t) {
      const cols = t.columns.map((c) => q(c.name)).join(', ');
      const targetSql = t.targetSql;
      await s.query(
        `CREATE TEMP TABLE _nucleus_changes ON COMMIT DROP AS SELECT ${cols}, NULL::text AS _op, NULL::int8 AS _lsn, NULL::int4 AS _seq, NULL::timestamptz AS _commit_ts, NULL::jsonb AS _unchanged, NULL::jsonb AS _old_key FROM ${targetSql} WITH NO DATA`,
      );
    },
    async dropStage(s) {
      await s.query(`DROP TABLE IF EXISTS ${STAGE}`);
    },
    async barriers(s) {
      const r = (await s.query(
        `SELECT _lsn::text AS lsn, _seq AS seq, _op AS op FROM ${STAGE} WHERE _op = 'truncate' OR _old_key IS NOT NULL ORDER BY _lsn, _seq`,
      )) as { rows: Array<{ lsn: string; seq: number; op: string }> };
      return r.rows.map((x) => ({ lsn: BigInt(x.lsn), seq: x.seq, op: x.op }));
    },
    async applySegment(s, t, from, to) {
      const keys = t.keys.map(q);
      const cols = t.columns.map((c) => q(c.name));
      const rest = t.columns.filter((c) => !t.keys.includes(c.name)).map((c) => q(c.name));
      const p = bounds(from, to);
      const n = (await s.query(
        `CREATE TEMP TABLE _nucleus_last ON COMMIT DROP AS SELECT DISTINCT ON (${keys.join(', ')}) * FROM ${STAGE} WHERE ${between()} AND _op <> 'truncate' ORDER BY ${keys.join(', ')}, _lsn DESC, _seq DESC`,
        p,
      )) as { rowCount?: number };
      if (!n.rowCount) {
        await s.query(`DROP TABLE ${LAST}`);
        return;
      }
      const onKey = (a: string, b: string) => t.keys.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
      // an unchanged TOASTed value of the last change: the latest earlier change of the key that had it
      const unchanged = (await s.query(
        `SELECT DISTINCT jsonb_array_elements_text(_unchanged) AS c FROM ${LAST} WHERE _op <> 'delete' AND _unchanged IS NOT NULL`,
      )) as { rows: Array<{ c: string }> };
      for (const { c } of unchanged.rows) {
        if (!t.columns.some((x) => x.name === c)) continue;
        await s.query(
          `UPDATE ${LAST} l SET ${q(c)} = e.${q(c)}, _unchanged = nullif(l._unchanged - $5::text, '[]'::jsonb)
           FROM (SELECT DISTINCT ON (${keys.join(', ')}) ${keys.join(', ')}, ${q(c)} FROM ${STAGE}
                 WHERE ${between()} AND _op IN ('insert', 'update') AND NOT coalesce(_unchanged ? $5::text, false)
                 ORDER BY ${keys.join(', ')}, _lsn DESC, _seq DESC) e
           WHERE ${onKey('e', 'l')} AND l._op <> 'delete' AND l._unchanged ? $5::text`,
          [...p, c],
        );
      }
      if (t.deletes === 'soft') {
        await s.query(
          `UPDATE ${t.targetSql} t SET _deleted_at = l._commit_ts, _op = 'delete', _lsn = l._lsn FROM ${LAST} l WHERE l._op = 'delete' AND ${onKey('t', 'l')}`,
        );
      } else {
        await s.query(`DELETE FROM ${t.targetSql} t USING ${LAST} l WHERE l._op = 'delete' AND ${onKey('t', 'l')}`);
      }
      const soft = t.deletes === 'soft';
      const extraCols = soft ? ', _deleted_at, _op, _lsn' : '';
      const extraVals = soft ? ', NULL, _op, _lsn' : '';
      const set = [
        ...rest.map((c) => `${c} = EXCLUDED.${c}`),
        ...(soft ? ['_deleted_at = NULL', '_op = EXCLUDED._op', '_lsn = EXCLUDED._lsn'] : []),
      ];
      await s.query(
        `INSERT INTO ${t.targetSql} (${cols.join(', ')}${extraCols}) SELECT ${cols.join(', ')}${extraVals} FROM ${LAST} WHERE _op <> 'delete' AND _unchanged IS NULL
         ON CONFLICT (${keys.join(', ')}) ${set.length ? `DO UPDATE SET ${set.join(', ')}` : 'DO NOTHING'}`,
      );
      // rows with a value still unchanged: the target keeps it (an UPDATE: such a row exists in the target)
      const partialSet = [
        ...t.columns
          .filter((c) => !t.keys.includes(c.name))
          .map(
            (c) => `${q(c.name)} = CASE WHEN l._unchanged ? ${lit(c.name)} THEN t.${q(c.name)} ELSE l.${q(c.name)} END`,
          ),
        ...(soft ? ['_deleted_at = NULL', '_op = l._op', '_lsn = l._lsn'] : []),
      ];
      if (partialSet.length) {
        await s.query(
          `UPDATE ${t.targetSql} t SET ${partialSet.join(', ')} FROM ${LAST} l WHERE l._op <> 'delete' AND l._unchanged IS NOT NULL AND ${onKey('t', 'l')}`,
        );
      }
      await s.query(`DROP TABLE ${LAST}`);
    },
    async applyBarrier(s, t, b, truncate) {
      if (b.op === 'truncate') {
        if (truncate === 'ignore') return;
        if (t.deletes === 'soft')
          await s.query(
            `UPDATE ${t.targetSql} SET _deleted_at = now(), _op = 'truncate', _lsn = $1::int8 WHERE _deleted_at IS NULL`,
            [b.lsn.toString()],
          );
        else await s.query(`DELETE FROM ${t.targetSql}`);
        return;
      }
      // an update that moved the key: the row found by its old key takes the new values (unchanged ones stay)
      const soft = t.deletes === 'soft';
      const set = [
        ...t.columns.map(
          (c) =>
            `${q(c.name)} = CASE WHEN coalesce(x._unchanged ? ${lit(c.name)}, false) THEN t.${q(c.name)} ELSE x.${q(c.name)} END`,
        ),
        ...(soft ? ['_deleted_at = NULL', '_op = x._op', '_lsn = x._lsn'] : []),
      ];
      const oldKey = t.keys
        .map((k) => {
          const c = t.columns.find((x) => x.name === k);
          return `t.${q(k)} = (x._old_key ->> ${lit(k)})::${c?.formatted ?? 'text'}`;
        })
        .join(' AND ');
      const moved = (await s.query(
        `UPDATE ${t.targetSql} t SET ${set.join(', ')} FROM ${STAGE} x WHERE x._lsn = $1::int8 AND x._seq = $2::int4 AND ${oldKey}`,
        [b.lsn.toString(), b.seq],
      )) as { rowCount?: number };
      if (moved.rowCount) return;
      // the old key is not in the target (it never was): write the new row when it is whole
      const cols = t.columns.map((c) => q(c.name));
      const rest = t.columns.filter((c) => !t.keys.includes(c.name)).map((c) => q(c.name));
      await s.query(
        `INSERT INTO ${t.targetSql} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ${STAGE} WHERE _lsn = $1::int8 AND _seq = $2::int4 AND _unchanged IS NULL
         ON CONFLICT (${t.keys.map(q).join(', ')}) ${rest.length ? `DO UPDATE SET ${rest.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}` : 'DO NOTHING'}`,
        [b.lsn.toString(), b.seq],
      );
    },
    async ensureSoftDeleteColumns(s, targetSql) {
      await s.query(
        `ALTER TABLE ${targetSql} ADD COLUMN IF NOT EXISTS _deleted_at timestamptz, ADD COLUMN IF NOT EXISTS _op text, ADD COLUMN IF NOT EXISTS _lsn bigint`,
      );
    },
  };
}

export type { ChangeTarget };
