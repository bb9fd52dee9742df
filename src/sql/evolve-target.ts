import type { IngestionContext } from '../contracts/context.js';
import type { ImportRequest } from '../contracts/sink-endpoint.js';
import type { RecordSchema } from '../contracts/values.js';
import { sqlTypeChange } from '../schema/schema-diff.js';
import type { SqlTable } from './dialect.js';
import type { LedgerColumn, LedgerSession, LedgerSinkDialect, LedgerTableInfo } from './ledger-dialect.js';

/** What {@link evolveTarget} changed. */
export interface TargetEvolution {
  added: string[];
  widened: Array<{ name: string; from: string; to: string }>;
  nullable: string[];
  /** Target columns the staged schema does not have (NULL in the rows written now). */
  absent: string[];
}

/**
 * Make an existing target fit the staged schema before the first slice (docs/decisions/0013-schema-evolution.md):
 *
 * - a staged field the target lacks → `ADD COLUMN` (nullable; rows loaded before hold NULL);
 * - a field the run's schema diff lists as widened, whose target column is narrower than the field's type →
 *   `ALTER COLUMN … TYPE` (only lossless moves, `sqlTypeChange`); a narrowed or otherwise changed type is left alone
 *   (the pipeline's contract refused what cannot load);
 * - a field that became nullable, and a target column the staged schema no longer has, lose their NOT NULL (outside
 *   the primary key), so rows written from now on can hold NULL there. A target column with a default of its own (or
 *   an identity) is the target's, not a dropped source column: left alone.
 *
 * Every step reads the catalog first and changes only what differs, so it is idempotent: a resumed import (or a
 * concurrent one) finds the work done. Returns the target as it is afterwards, and what changed.
 */
export async function evolveTarget<S extends LedgerSession, C extends LedgerColumn>(
  d: LedgerSinkDialect<S, C>,
  s: S,
  target: SqlTable,
  targetSql: string,
  info: LedgerTableInfo<C>,
  schema: RecordSchema,
  req: ImportRequest,
  ctx: IngestionContext,
): Promise<{ info: LedgerTableInfo<C>; change: TargetEvolution }> {
  const fold = d.caseInsensitiveColumns ? (n: string) => n.toLowerCase() : (n: string) => n;
  const byName = new Map(info.columns.map((c) => [fold(c.name), c]));
  const staged = new Set(schema.fields.map((f) => fold(f.name)));
  const pk = new Set(info.primaryKey.map(fold));
  const change: TargetEvolution = { added: [], widened: [], nullable: [], absent: [] };
  const ddl: string[] = [];

  for (const f of schema.fields) {
    if (byName.has(fold(f.name))) continue;
    const type = await d.columnType(s, f, false, targetSql, ctx);
    ddl.push(`ALTER TABLE ${targetSql} ADD COLUMN ${d.quote(f.name, 'column name')} ${type} NULL`);
    change.added.push(f.name);
  }
  const widened = new Set((req.schemaDiff?.widened ?? []).map((w) => fold(w.name)));
  const relaxed = new Set(
    (req.schemaDiff?.nullabilityChanged ?? []).filter((n) => n.nullable).map((n) => fold(n.name)),
  );
  for (const f of schema.fields) {
    const c = byName.get(fold(f.name));
    if (!c || c.generated) continue;
    if (widened.has(fold(f.name))) {
      const want = await d.columnType(s, f, pk.has(fold(f.name)), targetSql, ctx);
      const have = d.columnTypeOf(c);
      if (sqlTypeChange(have, want, { mysql: d.typeRules === 'mysql' }) === 'widened') {
        ddl.push(d.alterType(targetSql, c, want));
        change.widened.push({ name: c.name, from: have, to: want });
      }
    }
    if (relaxed.has(fold(f.name)) && c.nullable === false && !pk.has(fold(f.name))) {
      ddl.push(d.dropNotNull(targetSql, c));
      change.nullable.push(c.name);
    }
  }
  for (const c of info.columns) {
    // a column with a default (or identity) is the target's own (`loaded_at DEFAULT now()`): left alone
    if (c.generated || c.hasDefault || staged.has(fold(c.name))) continue;
    change.absent.push(c.name);
    if (c.nullable === false && !pk.has(fold(c.name))) {
      ddl.push(d.dropNotNull(targetSql, c));
      change.nullable.push(c.name);
    }
  }
  if (ddl.length) {
    for (const sql of ddl) await d.alterTable(s, target, sql);
    ctx.logger?.info?.(`${d.sinkName}: evolved ${targetSql} to the staged schema`, { ...change });
  }
  if (ddl.length || change.absent.length) {
    try {
      ctx.emit?.({
        type: 'schema.evolved',
        at: new Date().toISOString(),
        runId: ctx.runId,
        workspaceId: ctx.workspaceId,
        endpointId: ctx.endpointId,
        unitId: ctx.unitId,
        ...(ctx.sinkId !== undefined ? { sinkId: ctx.sinkId } : {}),
        target: targetSql,
        ...change,
      });
    } catch {
      // a throwing listener must not fail the import
    }
  }
  if (!ddl.length) return { info, change };
  const after = await d.describe(s, target);
  return { info: after ?? info, change };
}
