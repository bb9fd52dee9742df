import type { FieldSchema, RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import type { ColumnTypeChange, SchemaDiff } from './schema-diff.js';

/**
 * What a schema contract does with one kind of change (dlt's modes):
 * - `evolve`: take the change (add the column, widen the type);
 * - `freeze`: refuse it: the run fails with `schema_conflict` before anything is staged;
 * - `discard_value`: keep the rows, drop the values the change concerns (a new column is not created; a column
 *   whose type changed gets NULL);
 * - `discard_row`: drop the rows that hold a value the change concerns (a non-NULL value in a new or retyped
 *   column, a NULL in a column that became nullable).
 * @public
 */
export type SchemaContractMode = 'evolve' | 'freeze' | 'discard_value' | 'discard_row';

/**
 * A unit's schema contract (docs/schema-evolution.md): one mode for every change, or one per entity —
 * `columns` (a column added or dropped at the source) and `dataType` (a column's type or nullability changed).
 * @defaultValue 'evolve'
 * @public
 */
export type SchemaContract = SchemaContractMode | { columns?: SchemaContractMode; dataType?: SchemaContractMode };

/** A contract with both entities spelled out. @public */
export interface ResolvedSchemaContract {
  columns: SchemaContractMode;
  dataType: SchemaContractMode;
}

/** The modes, for validation. @internal */
export const SCHEMA_CONTRACT_MODES = ['evolve', 'freeze', 'discard_value', 'discard_row'] as const;

/** Both entities of a contract (`evolve` where not given). @public */
export function resolveSchemaContract(c: SchemaContract | undefined): ResolvedSchemaContract {
  if (c === undefined) return { columns: 'evolve', dataType: 'evolve' };
  if (typeof c === 'string') return { columns: c, dataType: c };
  return { columns: c.columns ?? 'evolve', dataType: c.dataType ?? 'evolve' };
}

/**
 * What a run does to its rows under the contract (all lists of column names). Empty lists: rows pass unchanged.
 * @public
 */
export interface RowFilter {
  /** Remove these keys from every row (a new column discarded). */
  omit: string[];
  /** Set these to NULL in every row (a retyped column's values discarded). */
  nullify: string[];
  /** Drop a row holding a non-NULL value in one of these. */
  dropIfSet: string[];
  /** Drop a row holding NULL in one of these (a column that became nullable, kept NOT NULL). */
  dropIfNull: string[];
}

/** The outcome of a schema contract for one run. @public */
export interface ContractDecision {
  /** The schema to stage, record and load: the source's, less what the contract discarded. */
  schema: RecordSchema;
  filter: RowFilter;
  /** Changes the contract refused (the run fails with `schema_conflict`). */
  violations: ContractViolation[];
}

/** One change a contract refused. @public */
export interface ContractViolation {
  column: string;
  change: 'added' | 'dropped' | 'widened' | 'narrowed' | 'typeChanged' | 'nullabilityChanged';
  /** Why it was refused: the contract's `freeze`, or a change `evolve` cannot carry out losslessly. */
  reason: 'freeze' | 'incompatible';
  from?: string;
  to?: string;
}

/** Whether a filter changes any row. @public */
export function filtersRows(f: RowFilter): boolean {
  return f.omit.length + f.nullify.length + f.dropIfSet.length + f.dropIfNull.length > 0;
}

/**
 * Apply a contract to the difference between the recorded schema (`before`) and the run's (`after`).
 *
 * - Added columns: `evolve` adds them; `freeze` refuses; `discard_value` leaves them out of the schema and the rows;
 *   `discard_row` leaves them out and drops the rows holding a value in them.
 * - Dropped columns: `freeze` refuses; any other mode takes the drop (the target keeps the column, NULL in rows
 *   written after the drop).
 * - Type changes: `evolve` takes widened and narrowed types (the target keeps the wider one); a type change that is
 *   neither is `incompatible` and refused — unless `opts.rebuild` (a `replace`, which rebuilds the target). `freeze` refuses any. `discard_value` keeps the recorded type and writes
 *   NULL; `discard_row` keeps the recorded type and drops the rows holding a value. A narrowed type fits the
 *   recorded one: the discard modes take it as it is.
 * - Nullability: a column that became NOT NULL needs nothing. One that became nullable: `evolve` relaxes the
 *   target, `freeze` refuses, both discard modes keep it NOT NULL and drop the rows holding NULL there.
 * @public
 */
export function applyContract(
  before: RecordSchema,
  diff: SchemaDiff,
  after: RecordSchema,
  c: ResolvedSchemaContract,
  opts: { rebuild?: boolean } = {},
): ContractDecision {
  const filter: RowFilter = { omit: [], nullify: [], dropIfSet: [], dropIfNull: [] };
  const violations: ContractViolation[] = [];
  const old = new Map(before.fields.map((f) => [f.name, f]));
  const replaced = new Map<string, FieldSchema>();
  const left = new Set<string>();

  for (const f of diff.added) {
    if (c.columns === 'freeze') violations.push({ column: f.name, change: 'added', reason: 'freeze', to: typeOf(f) });
    else if (c.columns !== 'evolve') {
      left.add(f.name);
      filter.omit.push(f.name);
      if (c.columns === 'discard_row') filter.dropIfSet.push(f.name);
    }
  }
  if (c.columns === 'freeze')
    for (const name of diff.dropped)
      violations.push({ column: name, change: 'dropped', reason: 'freeze', from: typeOf(old.get(name)!) });

  const retyped = (t: ColumnTypeChange) => {
    const was = old.get(t.name)!;
    if (c.dataType === 'freeze') {
      violations.push({ column: t.name, change: t.kind, reason: 'freeze', from: t.from, to: t.to });
      return;
    }
    if (c.dataType === 'evolve') {
      if (t.kind === 'typeChanged' && !opts.rebuild)
        violations.push({ column: t.name, change: t.kind, reason: 'incompatible', from: t.from, to: t.to });
      return;
    }
    if (t.kind === 'narrowed') return;
    const now = after.fields.find((f) => f.name === t.name)!;
    replaced.set(t.name, { ...was, nullable: now.nullable || was.nullable });
    (c.dataType === 'discard_row' ? filter.dropIfSet : filter.nullify).push(t.name);
  };
  for (const t of [...diff.widened, ...diff.narrowed, ...diff.typeChanged]) retyped(t);

  for (const n of diff.nullabilityChanged) {
    if (!n.nullable) continue;
    if (c.dataType === 'freeze') {
      violations.push({ column: n.name, change: 'nullabilityChanged', reason: 'freeze', from: 'NOT NULL', to: 'NULL' });
    } else if (c.dataType !== 'evolve') {
      filter.dropIfNull.push(n.name);
      const base = replaced.get(n.name) ?? after.fields.find((f) => f.name === n.name)!;
      replaced.set(n.name, { ...base, nullable: false });
    }
  }
  // a value discarded into NULL needs a nullable column: a NOT NULL one drops the row instead
  for (const name of filter.nullify.filter((n) => !(replaced.get(n) ?? old.get(n))!.nullable)) {
    filter.nullify.splice(filter.nullify.indexOf(name), 1);
    filter.dropIfSet.push(name);
  }

  const fields = after.fields.filter((f) => !left.has(f.name)).map((f) => replaced.get(f.name) ?? f);
  return { schema: { ...after, fields }, filter, violations };
}

function typeOf(f: FieldSchema): string {
  return f.native?.type ?? f.type;
}

/**
 * Apply a row filter to a batch (rows are copied only when a value changes; dropped rows are left out).
 * @public
 */
export function filterRows(rows: Row[], f: RowFilter): Row[] {
  if (!filtersRows(f)) return rows;
  const out: Row[] = [];
  for (const row of rows) {
    if (f.dropIfSet.some((k) => row[k] !== null && row[k] !== undefined)) continue;
    if (f.dropIfNull.some((k) => row[k] === null || row[k] === undefined)) continue;
    if (!f.omit.length && !f.nullify.length) {
      out.push(row);
      continue;
    }
    const copy: Row = {};
    for (const k of Object.keys(row)) if (!f.omit.includes(k)) copy[k] = f.nullify.includes(k) ? null : row[k]!;
    out.push(copy);
  }
  return out;
}

/**
 * The `schema_conflict` error of refused changes: names the unit, each column with its old and new type, and the
 * remedies.
 * @internal
 */
export function contractError(
  where: { unitId: string; what: string; historyKey?: string },
  violations: ContractViolation[],
  c: ResolvedSchemaContract,
): IngestError {
  const lines = violations.map((v) => {
    const types =
      v.from !== undefined && v.to !== undefined
        ? ` (${v.from} → ${v.to})`
        : v.to
          ? ` (${v.to})`
          : v.from
            ? ` (was ${v.from})`
            : '';
    return `column ${JSON.stringify(v.column)} ${v.change === 'typeChanged' ? 'changed type' : v.change === 'nullabilityChanged' ? 'became nullable' : v.change}${types}`;
  });
  const frozen = violations.filter((v) => v.reason === 'freeze');
  const entity = (v: ContractViolation) => (v.change === 'added' || v.change === 'dropped' ? 'columns' : 'dataType');
  const remedies: string[] = [];
  if (frozen.length) {
    const entities = [...new Set(frozen.map(entity))];
    remedies.push(
      `accept the change with schemaContract ${entities.map((e) => `{ ${e}: 'evolve' }`).join(' / ')} (or 'discard_value' / 'discard_row' to leave it out)`,
      'or undo it at the source',
    );
  }
  if (violations.some((v) => v.reason === 'incompatible')) {
    remedies.push(
      "keep the recorded type with schemaContract { dataType: 'discard_value' } (values NULL) or 'discard_row'",
      `or ALTER the target column to the new type yourself and delete the unit's schema history${where.historyKey ? ` (KvStore key ${JSON.stringify(where.historyKey)})` : ''}`,
      "or load it once with disposition 'replace' (the SQL sinks rebuild the target)",
      'or rename the column at the source (a new column is added)',
    );
  }
  const contract = `columns: ${c.columns}, dataType: ${c.dataType}`;
  return new IngestError(
    'schema_conflict',
    `Schema of unit ${JSON.stringify(where.unitId)} changed against its contract (${contract}): ${lines.join('; ')}. Nothing was staged. Remedies: ${remedies.join('; ')} (${where.what})`,
    {
      retryable: false,
      details: {
        unitId: where.unitId,
        violations: violations.map((v) => ({ ...v })),
        contract: { ...c },
      },
    },
  );
}
