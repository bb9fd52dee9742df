/**
 * The queries of the boundary algorithm (docs/decisions/0005-incremental-boundaries.md), in the read's snapshot:
 * resume from a checkpoint, the position a run reaches, and a plan of primary-key slices.
 * @internal
 */
import type { IngestionContext } from '../contracts/context.js';
import type { ExportPlan } from '../contracts/source-endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import {
  boundaryLimits,
  dedupeFilter,
  encodeSeen,
  multiset,
  Params,
  type Part,
  parseCheckpoint,
  type Resume,
  readParts,
  regions,
  type SliceBounds,
  toCheckpoint,
} from './boundary.js';
import { invalidCheckpoint, type SqlCheckpoint } from './source-config.js';
import type { SourceColumn, SourceDialect, SourceUnit } from './source-dialect.js';

const DEFAULT_SLICE_ROWS = 1_000_000;
const MAX_SLICES = 1024;
/** Slices of a plan, at most, that are read by a scan of the table ({@link SliceBounds.scan}). */
const SCAN_SLICES = 4;

/** The position a run reaches (in one snapshot). */
export interface Reach {
  upper: string[] | null;
  from: string[] | null;
  /** Fingerprints of the groups kept by fingerprint. */
  seen: string;
  seenRows: number;
  /** The greatest key of the ties at `upper`, when they are too many to fingerprint. */
  tieKey?: string[];
  /** The greatest key of the special rows, when they are too many to fingerprint. */
  specialKey?: string[];
}

/** One source's engine, session and unit, with its name for messages. */
export interface Scope<C extends SourceColumn, S> {
  d: SourceDialect<C, S>;
  s: S;
  unit: SourceUnit<C>;
  /** `PostgresSource`, `MySqlSource`. */
  name: string;
}

/** Fingerprints of the rows of `where`. */
async function fingerprints<C extends SourceColumn, S>(x: Scope<C, S>, where: string, p: Params): Promise<string[]> {
  const g = regions(x.d, x.unit);
  const rows = await x.d.texts(x.s, `SELECT ${g.fingerprint} FROM ${x.unit.table} t WHERE ${where}`, p.values);
  return rows.map((r) => r[0] as string);
}

/**
 * Fingerprint the columns the checkpoint's `seen` was taken on, while they all still exist and `seen` holds any: a
 * column added since (or a type widened, whose text stays the same) then changes no fingerprint, so the boundary rows
 * are not exported again (docs/decisions/0013-schema-evolution.md). A fingerprinted column that was dropped leaves
 * the unit's own columns: the window is exported once more.
 */
function keepFingerprint<C extends SourceColumn>(unit: SourceUnit<C>, recorded: unknown, seen: string): void {
  if (!seen || !Array.isArray(recorded) || !recorded.every((n) => typeof n === 'string')) return;
  const byName = new Map(unit.info.columns.map((c) => [c.name, c as C]));
  const cols = recorded.map((n) => byName.get(n));
  if (cols.every((c) => c !== undefined)) unit.fingerprint = cols as C[];
}

/**
 * Validate a checkpoint (either version) against the unit; its values must cast to the columns. A version-1
 * checkpoint is converted in this snapshot: the rows it read at its last value (key ≤ its key) and the special rows
 * count as exported.
 * @throws IngestError `checkpoint_invalid`
 */
export async function resumeFrom<C extends SourceColumn, S>(x: Scope<C, S>, ck: unknown): Promise<Resume | null> {
  if (ck === null || ck === undefined) return null;
  const { d, unit } = x;
  const parsed = parseCheckpoint(
    unit.unitId,
    unit.cursor.map((c) => c.name),
    unit.key.map((c) => c.name),
    ck,
  );
  if (parsed.version !== 1) keepFingerprint(unit, (ck as { fingerprint?: unknown }).fingerprint, parsed.seen);
  const p = new Params(d);
  const casts: string[] = [];
  const key = parsed.version === 1 ? parsed.key : null;
  for (const [vals, cols] of [
    [parsed.values, unit.cursor],
    [parsed.version !== 1 ? parsed.from : null, unit.cursor],
    [key, unit.key],
    [parsed.version !== 1 ? (parsed.tieKey ?? null) : null, unit.key],
    [parsed.version !== 1 ? (parsed.specialKey ?? null) : null, unit.key],
  ] as const)
    if (vals) for (let i = 0; i < vals.length; i++) casts.push(p.add(vals[i], cols[i]));
  if (casts.length) {
    try {
      await d.texts(x.s, `SELECT ${casts.join(', ')}`, p.values);
    } catch (err) {
      if (!d.isRowError(err)) throw err;
      throw invalidCheckpoint(unit.unitId, `a value does not read as its column's type: ${(err as Error).message}`);
    }
  }
  if (parsed.version !== 1) {
    const { version: _, ...resume } = parsed;
    return resume;
  }
  const g = regions(d, unit);
  const q = new Params(d);
  let read = `(${g.between(parsed.values, parsed.values, q)}`;
  if (key) read += ` AND ${g.compare(unit.key, '<=', key, q)}`;
  read += `) OR ${g.special}`;
  const seen = encodeSeen(multiset(await fingerprints(x, read, q)));
  return { values: parsed.values, from: parsed.values, seen };
}

/**
 * The position this run reaches, in the current snapshot: the greatest regular cursor tuple, the new window start
 * (the tuple itself, or its first column minus `lag`, never below the previous window) and the fingerprints of every
 * row in the window and of every special row. A `lag` window above `boundaryMaxRows` shrinks to the ties. A tie group
 * (the ties at the greatest tuple, the special rows) that does not fit `boundaryLimits.tieFingerprints` with the other
 * is kept by its greatest key instead (ADR 0005, "Amendment: bounded checkpoints").
 * @throws IngestError `config_invalid` (a `lag` the cursor cannot subtract; a tie group too large for a unit without key)
 */
export async function reach<C extends SourceColumn, S>(
  x: Scope<C, S>,
  r: Resume | null,
  ctx: IngestionContext,
): Promise<Reach> {
  const { d, unit } = x;
  const g = regions(d, unit);
  let p = new Params(d);
  const top = await d.texts(
    x.s,
    `SELECT ${unit.cursor.map((c) => d.text(g.col(c), c)).join(', ')} FROM ${unit.table} t WHERE ${g.regular} AND ${g.afterResume(r, p)}
      ORDER BY ${unit.cursor.map((c) => `${g.col(c)} DESC`).join(', ')} LIMIT 1`,
    p.values,
  );
  const upper = top.length ? (top[0] as string[]) : (r?.values ?? null);
  let from = upper;
  if (upper && unit.lag) {
    p = new Params(d);
    const sql = `SELECT ${unit.lag(p, upper[0], r?.from?.[0] ?? null)}`;
    try {
      from = [(await d.texts(x.s, sql, p.values))[0][0] as string];
    } catch (err) {
      if (!d.isRowError(err)) throw err;
      const why = `\`lag\` does not apply to ${JSON.stringify(unit.cursor[0].name)}: ${(err as Error).message}`;
      throw new IngestError('config_invalid', `Unit ${JSON.stringify(unit.unitId)}: ${why}`, {
        cause: err,
        details: { unitId: unit.unitId, issues: [`units.${unit.unitId}.lag: ${(err as Error).message}`] },
      });
    }
  }
  /** Rows of `where`, counted up to `cap`. */
  const rowsOf = async (where: (q: Params) => string, cap: number) => {
    const q = new Params(d);
    const sql = `SELECT count(*) FROM (SELECT 1 FROM ${unit.table} t WHERE ${where(q)} LIMIT ${cap}) y`;
    return Number((await d.texts(x.s, sql, q.values))[0][0]);
  };
  const budget = boundaryLimits.tieFingerprints;
  const cap = Math.max(unit.boundaryMaxRows, budget) + 1;
  const window = (start: string[] | null) => (q: Params) => (upper && start ? g.between(start, upper, q) : 'FALSE');
  let windowRows = await rowsOf(window(from), cap);
  const details = (rows: number) => ({ unitId: unit.unitId, rows, boundaryMaxRows: unit.boundaryMaxRows });
  if (windowRows > unit.boundaryMaxRows && from !== upper) {
    ctx?.logger?.warn(
      `${x.name}: the lag window holds more rows than boundaryMaxRows; this run keeps only the ties`,
      details(windowRows),
    );
    from = upper;
    windowRows = await rowsOf(window(from), cap);
  }
  const specialRows = await rowsOf(() => g.special, cap);
  // the tie groups (the ties at `upper` — not a lag window, whose size `boundaryMaxRows` bounds — and the special
  // rows) are kept by fingerprint while they fit the budget together; beyond it the larger is kept by its greatest key
  const ties = upper !== null && from !== null && from.join('\u0000') === upper.join('\u0000');
  const groups = [
    { name: 'ties' as const, rows: ties ? windowRows : 0, byKey: false },
    { name: 'special' as const, rows: specialRows, byKey: false },
  ].sort((a, b) => b.rows - a.rows);
  for (const group of groups) {
    if (groups.reduce((n, x) => n + (x.byKey ? 0 : x.rows), 0) <= budget) break;
    if (group.rows > 0) group.byKey = true;
  }
  const keyed = (name: 'ties' | 'special') => groups.find((x) => x.name === name)!.byKey;
  const out: Reach = { upper, from, seen: '', seenRows: 0 };
  for (const group of groups.filter((x) => x.byKey)) {
    const where = (q: Params) => (group.name === 'ties' ? window(from)(q) : g.special);
    const key = await greatestKey(x, where, group.rows);
    if (group.name === 'ties') out.tieKey = key;
    else out.specialKey = key;
    ctx?.logger?.warn(
      `${x.name}: ${group.rows >= cap ? `more than ${cap - 1}` : group.rows} rows ${group.name === 'ties' ? 'tie at the greatest cursor value' : 'have a NULL or infinite cursor'}, more than the ${budget} a checkpoint keeps by fingerprint; it keeps their greatest key instead, and a row joining them later with a lower key will not be read (docs/decisions/0005, "Amendment: bounded checkpoints"; a finer cursor avoids it)`,
      { ...details(group.rows), group: group.name, key },
    );
  }
  const q = new Params(d);
  const fpWhere = [keyed('ties') ? 'FALSE' : window(from)(q), keyed('special') ? 'FALSE' : g.special];
  if (fpWhere.some((w) => w !== 'FALSE')) {
    const fps = await fingerprints(x, fpWhere.join(' OR '), q);
    out.seen = encodeSeen(multiset(fps));
    out.seenRows = fps.length;
  }
  return out;
}

/**
 * The greatest key of the rows of `where`, in the server's order of the key columns (their collation), as text.
 * @throws IngestError `config_invalid` when the unit has no key (or every key in the group is NULL)
 */
async function greatestKey<C extends SourceColumn, S>(
  x: Scope<C, S>,
  where: (q: Params) => string,
  rows: number,
): Promise<string[]> {
  const { d, unit } = x;
  const g = regions(d, unit);
  const q = new Params(d);
  const found = unit.key.length
    ? await d.texts(
        x.s,
        `SELECT ${unit.key.map((c) => d.text(g.col(c), c)).join(', ')} FROM ${unit.table} t WHERE (${where(q)}) AND ${unit.key.map((c) => `${g.col(c)} IS NOT NULL`).join(' AND ')}
          ORDER BY ${unit.key.map((c) => `${g.col(c)} DESC`).join(', ')} LIMIT 1`,
        q.values,
      )
    : [];
  if (found.length) return found[0] as string[];
  const id = JSON.stringify(unit.unitId);
  throw new IngestError(
    'config_invalid',
    `Unit ${id}: ${rows} rows tie at one cursor position (or have a NULL or infinite cursor), more than the ${boundaryLimits.tieFingerprints} a checkpoint keeps by fingerprint, and the unit has no key to order them by: set units[${id}].primaryKey to a unique column, or use finer cursorColumns (docs/decisions/0005, "Amendment: bounded checkpoints")`,
    {
      details: {
        unitId: unit.unitId,
        rows,
        issues: [`units.${unit.unitId}.primaryKey: needed when more than ${boundaryLimits.tieFingerprints} rows tie`],
      },
    },
  );
}

/** Rows the regions would export now: counted in SQL up to `cap`, or by fingerprint where they are deduped. */
async function count<C extends SourceColumn, S>(x: Scope<C, S>, parts: Part[], cap: number): Promise<number> {
  let n = 0;
  for (const part of parts) {
    const where = part.where.join(' AND ');
    if (part.dedupe) {
      const keep = dedupeFilter(part.dedupe);
      for (const fp of await fingerprints(x, where, part.p)) if (keep(fp)) n++;
    } else {
      const limit = Number.isFinite(cap) ? ` LIMIT ${cap}` : '';
      const sql = `SELECT count(*) FROM (SELECT 1 FROM ${x.unit.table} t WHERE ${where}${limit}) y`;
      n += Number((await x.d.texts(x.s, sql, part.p.values))[0][0]);
    }
  }
  return n;
}

/**
 * Plan a run in one snapshot: the position it reaches (the plan's checkpoint), the rows below the window split into
 * primary-key ranges of about `sliceMaxRows` (single-column keys), each slice also reading its range of the window
 * and of the special rows with the fingerprints the plan saw there. Nothing new: no slice, the checkpoint unchanged.
 */
export async function planSlices<C extends SourceColumn, S>(
  x: Scope<C, S>,
  mode: 'full' | 'incremental',
  checkpoint: unknown,
  sliceMaxRows: number | undefined,
  ctx: IngestionContext,
): Promise<ExportPlan<SqlCheckpoint>> {
  const { d, unit } = x;
  const sliceRows = sliceMaxRows ?? DEFAULT_SLICE_ROWS;
  const plan: ExportPlan<SqlCheckpoint> = { slices: [], checkpoint: null, schema: unit.schema };
  const fresh = () => new Params(d);
  const estimate = d.trustEstimate && (unit.info.estimatedRows ?? 0) > 0 ? unit.info.estimatedRows : undefined;
  let base: SliceBounds = { planned: true, main: true, boundary: false, from: null, upper: null, expect: '' };
  let resume: Resume | null = null;
  let rows: number;
  if (!unit.cursor.length) {
    // a full read without a cursor: every row, split by primary key; no checkpoint
    rows = estimate ?? (await count(x, readParts(d, unit, null, base, fresh), sliceRows * MAX_SLICES));
  } else {
    resume = await resumeFrom(x, mode === 'incremental' ? checkpoint : null);
    const at = await reach(x, resume, ctx);
    base = { ...base, boundary: true, from: at.from, upper: at.upper, expect: at.seen };
    if (at.tieKey) base.tieKey = at.tieKey;
    if (at.specialKey) base.specialKey = at.specialKey;
    const boundaryRows = await count(x, readParts(d, unit, resume, { ...base, main: false }, fresh), Infinity);
    // a first or full run of an analyzed table takes the planner's estimate instead of counting the table
    const mainRows =
      resume === null && estimate !== undefined
        ? Math.max(1, estimate - boundaryRows)
        : await count(x, readParts(d, unit, resume, { ...base, boundary: false }, fresh), sliceRows * MAX_SLICES);
    rows = boundaryRows + mainRows;
    if (rows === 0) {
      // nothing new: stage nothing and leave the checkpoint as it is
      plan.checkpoint = mode === 'incremental' ? (checkpoint as SqlCheckpoint) : null;
      plan.estimatedRows = 0;
      return plan;
    }
    plan.checkpoint = toCheckpoint(unit, at);
  }
  plan.estimatedRows = rows;
  const g = regions(d, unit);
  let cuts: string[] = [];
  if (unit.key.length === 1 && rows > sliceRows) {
    // every row the slices may export: after the previous position or in its window, and the special rows
    const p = new Params(d);
    const where = unit.cursor.length
      ? [`((${g.regular} AND (${g.afterResume(resume, p)} OR ${g.inOldWindow(resume, p)})) OR ${g.special})`]
      : [];
    where.push(`${g.col(unit.key[0])} IS NOT NULL`);
    const n = Math.min(MAX_SLICES, Math.ceil(rows / sliceRows));
    cuts = await d.splitPoints(x.s, unit, where.join(' AND '), p, n, rows);
  }
  // a few slices covering most of the table: each is read by a scan of the table rather than through the key's index
  const tableRows = unit.info.estimatedRows ?? 0;
  const scan = cuts.length > 0 && cuts.length < SCAN_SLICES && tableRows > 0 && rows >= tableRows / 2;
  for (let i = 0; i <= cuts.length; i++) {
    const b: SliceBounds = { ...base };
    if (scan) b.scan = true;
    if (i > 0) b.pkGt = cuts[i - 1];
    if (i < cuts.length) b.pkLe = cuts[i];
    plan.slices.push({ index: i, bounds: b });
  }
  if (cuts.length && unit.cursor.length) {
    const parts = await boundaryByRange(x, base, cuts);
    for (let i = 0; i < plan.slices.length; i++) (plan.slices[i].bounds as SliceBounds).expect = parts[i];
  }
  return plan;
}

/**
 * The plan's boundary fingerprints split by primary-key range: range i is (cuts[i-1], cuts[i]] (the first also takes
 * NULL keys).
 */
async function boundaryByRange<C extends SourceColumn, S>(
  x: Scope<C, S>,
  b: SliceBounds,
  cuts: string[],
): Promise<string[]> {
  const { d, unit } = x;
  const g = regions(d, unit);
  const p = new Params(d);
  const k = g.col(unit.key[0]);
  const range = `CASE WHEN ${k} IS NULL THEN 0 ${cuts.map((c, i) => `WHEN ${k} <= ${p.add(c, unit.key[0])} THEN ${i}`).join(' ')} ELSE ${cuts.length} END`;
  // the groups kept by fingerprint only (a group kept by key is read up to `tieKey` / `specialKey` instead)
  const window = b.from && b.upper && !b.tieKey ? g.between(b.from, b.upper, p) : 'FALSE';
  const special = b.specialKey ? 'FALSE' : g.special;
  const rows = await d.texts(
    x.s,
    `SELECT ${range}, ${g.fingerprint} FROM ${unit.table} t WHERE ${window} OR ${special}`,
    p.values,
  );
  const out = Array.from({ length: cuts.length + 1 }, () => new Map<string, number>());
  for (const [r, fp] of rows) {
    const m = out[Number(r)];
    m.set(fp as string, (m.get(fp as string) ?? 0) + 1);
  }
  return out.map(encodeSeen);
}
