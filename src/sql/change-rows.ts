import type { FieldSchema, RecordSchema } from '../contracts/values.js';

/**
 * The fields a change-capture source adds to each row after the table's own (docs/decisions/0015-postgres-cdc.md):
 * - `_op`: `insert`, `update`, `delete` or `truncate`;
 * - `_lsn`: the commit position of the transaction (an int64; snapshot rows carry the slot's consistent point);
 * - `_seq`: the change's place in its transaction, from 0 (order = `_lsn`, then `_seq`);
 * - `_commit_ts`: the commit time (null for snapshot rows);
 * - `_unchanged`: a JSON array of the columns whose TOASTed value the update did not change (their value in the row is
 *   a placeholder NULL that must never be written), or null;
 * - `_old_key`: for an update that changed the primary key, the old key as a JSON object of PostgreSQL text values,
 *   else null.
 * A delete carries its key (the other columns are NULL unless the table has `REPLICA IDENTITY FULL`).
 * @internal
 */
export const CHANGE_FIELDS = ['_op', '_lsn', '_seq', '_commit_ts', '_unchanged', '_old_key'] as const;

/** The {@link CHANGE_FIELDS} as schema fields. @internal */
export const CHANGE_FIELD_SCHEMAS: readonly FieldSchema[] = [
  { name: '_op', type: 'string', nullable: false },
  { name: '_lsn', type: 'int64', nullable: false },
  { name: '_seq', type: 'int32', nullable: false },
  { name: '_commit_ts', type: 'timestamp', nullable: true, logical: { withTimeZone: true } },
  { name: '_unchanged', type: 'json', nullable: true },
  { name: '_old_key', type: 'json', nullable: true },
];

/** The schema of change rows of a table: its fields, then the change fields. @internal */
export function changeSchema(table: RecordSchema): RecordSchema {
  return { ...table, fields: [...table.fields, ...CHANGE_FIELD_SCHEMAS] };
}

/** Whether staged rows are change rows (their schema ends with every change field). @internal */
export function isChangeSchema(schema: RecordSchema | undefined): schema is RecordSchema {
  if (!schema) return false;
  const names = new Set(schema.fields.map((f) => f.name));
  return CHANGE_FIELDS.every((n) => names.has(n));
}

/** The table part of a change schema (the change fields removed). @internal */
export function tableSchemaOf(schema: RecordSchema): RecordSchema {
  const meta = new Set<string>(CHANGE_FIELDS);
  return { ...schema, fields: schema.fields.filter((f) => !meta.has(f.name)) };
}
