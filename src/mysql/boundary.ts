/*
 * Incremental boundaries of MySqlSource (docs/decisions/0005-incremental-boundaries.md, as PostgresSource does them):
 * resume AT the last cursor value, inclusive, and skip what was already exported there, by row fingerprint.
 *
 * A run with checkpoint `old` and, in its snapshot, the greatest cursor tuple `values` reads three regions:
 * - main: regular rows (no NULL cursor column) after `old.values` and below the new window — no dedupe;
 * - old window: regular rows in `[old.from, old.values]` below the new window — minus the copies in `old.seen`;
 * - new window and special rows: regular rows in `[from, values]` (`from` = `values`, or its first column minus `lag`)
 *   and rows with a NULL cursor column — at most the copies the plan saw there that `old.seen` does not hold, so a
 *   row committed after the plan waits for the next run instead of being exported twice.
 * The new checkpoint's `seen` holds the fingerprints of the new window and of the special rows, as the plan saw them.
 */
import type { IngestionContext } from '../contracts/context.js';
import { IngestError } from '../errors/ingest-error.js';
import type { MySqlColumnInfo } from './catalog.js';
import type { MySqlSession } from './connection.js';
import { quoteMySqlIdentifier } from './identifiers.js';
import type { MySqlCheckpoint, MySqlCheckpointV1 } from './source-config.js';
import { invalidMySqlCheckpoint } from './source-config.js';
import type { CastField } from './type-mapping.js';

/** What the boundary code needs of a unit. @internal */
export interface BoundaryUnit {
  unitId: string;
  table: string;
  cursor: MySqlColumnInfo[];
  key: MySqlColumnInfo[];
  /** Columns of the fingerprint: exported, cursor and key columns, in table order. */
  fingerprint: MySqlColumnInfo[];
  lag?: Lag;
  boundaryMaxRows: number;
}

/** A parsed `lag`: an interval for temporal cursors, a number for numeric ones. @internal */
export type Lag = { interval: string } | { amount: string };

/** The previous position, as v2 (a v1 checkpoint is converted in the plan's snapshot). @internal */
export interface Resume {
  values: string[] | null;
  from: string[] | null;
  /** Fingerprints (hex) already exported, with their counts. */
  seen: Map<string, number>;
}

/** Bounds of a v2 planned slice (JSON, stored in the run state). @internal */
export type BoundaryBounds =
  | { v: 2; part: 'empty' }
  | { v: 2; part: 'main'; after: string[] | null; below: string[] | null; pkGt?: string; pkLe?: string }
  | {
      v: 2;
      part: 'boundary';
      /** Old window, read minus `seen`. */
      old: { from: string[]; values: string[]; seen: string } | null;
      /** New window `[from, values]`; null when there are only special rows. */
      window: { from: string[]; values: string[] } | null;
      /** Fingerprints (base64) to export from the new window and the special rows, at most once per copy. */
      expect: string;
    };

const HEX = /^[0-9a-f]{16}$/;

/** Multiset of 8-byte fingerprints → sorted base64 (the checkpoint's `seen`). */
export function encodeSeen(fps: Map<string, number>): string {
  const all: string[] = [];
  for (const [fp, n] of fps) for (let i = 0; i < n; i++) all.push(fp);
  all.sort();
  return Buffer.from(all.join(''), 'hex').toString('base64');
}

/** base64 → multiset of hex fingerprints. */
export function decodeSeen(text: string, unitId: string): Map<string, number> {
  const buf = Buffer.from(text, 'base64');
  if (buf.length % 8) throw invalidMySqlCheckpoint(unitId, '`seen` is not a list of 8-byte fingerprints');
  const out = new Map<string, number>();
  for (let i = 0; i < buf.length; i += 8) {
    const fp = buf.subarray(i, i + 8).toString('hex');
    out.set(fp, (out.get(fp) ?? 0) + 1);
  }
  return out;
}

function count(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

const q = (c: MySqlColumnInfo) => quoteMySqlIdentifier(c.name);

/** Exact text of a column (what checkpoints and fingerprints hold). @internal */
export function textExpr(c: MySqlColumnInfo): string {
  if (c.kind === 'binary') return `HEX(${q(c)})`;
  if (c.kind === 'bit') return `CAST(${q(c)} AS UNSIGNED)`;
  return `CAST(${q(c)} AS CHAR)`;
}

/** A parameter compared with a column, cast so that the comparison is exact (never through DOUBLE). @internal */
export function paramExpr(c: MySqlColumnInfo): string {
  switch (c.kind) {
    case 'int':
    case 'bigint':
    case 'year':
      return c.unsigned ? 'CAST(? AS UNSIGNED)' : 'CAST(? AS SIGNED)';
    case 'bit':
      return 'CAST(? AS UNSIGNED)';
    case 'decimal':
      return `CAST(? AS DECIMAL(${c.precision ?? 65},${c.scale ?? 30}))`;
    case 'float':
      return 'CAST(? AS DOUBLE)';
    case 'binary':
      return 'UNHEX(?)';
    default:
      return '?';
  }
}

/** 8 bytes (16 hex digits) of the md5 of the row's exact text; NULL and the text 'NULL' differ (QUOTE). */
export function fingerprintExpr(unit: BoundaryUnit): string {
  return `LEFT(MD5(CONCAT_WS(',', ${unit.fingerprint.map((c) => `QUOTE(${textExpr(c)})`).join(', ')})), 16)`;
}

/** `(a, b) op (x, y)` spelled out (index-friendly), over the first `vals.length` cursor columns. */
export function tupleCmp(
  cols: MySqlColumnInfo[],
  vals: string[],
  op: '>' | '>=' | '<' | '<=',
  params: unknown[],
): string {
  const n = Math.min(cols.length, vals.length);
  const strict = op[0];
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const eqs: string[] = [];
    for (let j = 0; j < i; j++) {
      eqs.push(`${q(cols[j])} = ${paramExpr(cols[j])}`);
      params.push(vals[j]);
    }
    eqs.push(`${q(cols[i])} ${i === n - 1 ? op : strict} ${paramExpr(cols[i])}`);
    params.push(vals[i]);
    parts.push(`(${eqs.join(' AND ')})`);
  }
  return `(${parts.join(' OR ')})`;
}

const regular = (unit: BoundaryUnit) => `(${unit.cursor.map((c) => `${q(c)} IS NOT NULL`).join(' AND ')})`;
const special = (unit: BoundaryUnit) => `(${unit.cursor.map((c) => `${q(c)} IS NULL`).join(' OR ')})`;

function windowWhere(unit: BoundaryUnit, w: { from: string[]; values: string[] }, params: unknown[]): string {
  return `(${regular(unit)} AND ${tupleCmp(unit.cursor, w.from, '>=', params)} AND ${tupleCmp(unit.cursor, w.values, '<=', params)})`;
}

/** Conditions of a main slice (regular rows after `after`, below `below`, in the primary-key range). @internal */
export function mainWhere(
  unit: BoundaryUnit,
  b: Extract<BoundaryBounds, { part: 'main' }>,
  params: unknown[],
): string[] {
  const where = [regular(unit)];
  if (b.after) where.push(tupleCmp(unit.cursor, b.after, '>', params));
  if (b.below) where.push(tupleCmp(unit.cursor, b.below, '<', params));
  if (unit.key.length === 1) {
    if (b.pkGt !== undefined) {
      where.push(`${q(unit.key[0])} > ${paramExpr(unit.key[0])}`);
      params.push(b.pkGt);
    }
    if (b.pkLe !== undefined) {
      where.push(`${q(unit.key[0])} <= ${paramExpr(unit.key[0])}`);
      params.push(b.pkLe);
    }
  }
  return where;
}

/** The two queries of a boundary slice: the old window (deduped by `seen`) and the new window + special rows. @internal */
export function boundaryQueries(
  unit: BoundaryUnit,
  b: Extract<BoundaryBounds, { part: 'boundary' }>,
): Array<{ where: string; values: unknown[]; dedupe: 'seen' | 'expect'; fps: string }> {
  const out: Array<{ where: string; values: unknown[]; dedupe: 'seen' | 'expect'; fps: string }> = [];
  if (b.old) {
    const values: unknown[] = [];
    let where = windowWhere(unit, b.old, values);
    if (b.window) where += ` AND ${tupleCmp(unit.cursor, b.window.from, '<', values)}`;
    out.push({ where, values, dedupe: 'seen', fps: b.old.seen });
  }
  const values: unknown[] = [];
  const where = b.window ? `(${windowWhere(unit, b.window, values)} OR ${special(unit)})` : special(unit);
  out.push({ where, values, dedupe: 'expect', fps: b.expect });
  return out;
}

/** Drops the copies a multiset says to drop (`seen`), or keeps only the copies it says to keep (`expect`). @internal */
export function dedupeFilter(kind: 'seen' | 'expect', fps: string, unitId: string): (fp: string) => boolean {
  const m = decodeSeen(fps, unitId);
  if (kind === 'seen')
    return (fp) => {
      const n = m.get(fp);
      if (!n) return true;
      m.set(fp, n - 1);
      return false;
    };
  return (fp) => {
    const n = m.get(fp);
    if (!n) return false;
    m.set(fp, n - 1);
    return true;
  };
}

const INTERVAL = /^\s*(\d+)\s*(microsecond|second|minute|hour|day|week|month|year)s?\s*$/i;
const TEMPORAL = new Set(['date', 'datetime', 'timestamp']);
const NUMERIC = new Set(['int', 'bigint', 'decimal', 'float', 'year']);

/** Check a unit's `lag` against its first cursor column. @throws IngestError `config_invalid` @internal */
export function parseLag(unitId: string, lag: string | number, c: MySqlColumnInfo | undefined): Lag {
  const bad = (why: string) =>
    new IngestError('config_invalid', `Unit ${JSON.stringify(unitId)}: \`lag\` ${why}`, {
      details: { unitId, issues: [`lag: ${why}`] },
    });
  if (!c) throw bad('needs cursorColumns');
  if (TEMPORAL.has(c.kind)) {
    if (typeof lag === 'number') {
      if (!Number.isInteger(lag) || lag < 0) throw bad('in seconds must be a non-negative integer');
      return { interval: `${lag} SECOND` };
    }
    const m = INTERVAL.exec(lag);
    if (!m) throw bad(`${JSON.stringify(lag)} is not an interval such as '15 minutes' or '2 days'`);
    return { interval: `${m[1]} ${m[2].toUpperCase()}` };
  }
  if (NUMERIC.has(c.kind)) {
    if (typeof lag !== 'number' || !Number.isFinite(lag) || lag < 0)
      throw bad(`on the numeric cursor ${JSON.stringify(c.name)} must be a non-negative number`);
    if (c.kind !== 'decimal' && c.kind !== 'float' && !Number.isInteger(lag))
      throw bad(`on the integer cursor ${JSON.stringify(c.name)} must be an integer`);
    return { amount: String(lag) };
  }
  throw bad(
    `needs a first cursor column of a date, time or numeric type; ${JSON.stringify(c.name)} is ${c.columnType}`,
  );
}

/** The window start for `values`: the tuple itself, or its first column minus `lag` (exact, in SQL). */
async function windowFrom(s: MySqlSession, unit: BoundaryUnit, values: string[]): Promise<string[]> {
  const lag = unit.lag;
  if (!lag) return values;
  const c = unit.cursor[0];
  let expr: string;
  if ('interval' in lag)
    expr = `CAST(CAST(? AS ${c.kind === 'date' ? 'DATE' : 'DATETIME(6)'}) - INTERVAL ${lag.interval} AS CHAR)`;
  else if (c.kind === 'float') expr = 'CAST(CAST(? AS DOUBLE) - CAST(? AS DOUBLE) AS CHAR)';
  else {
    const scale = c.kind === 'decimal' ? (c.scale ?? 30) : 0;
    const diff = `CAST(? AS DECIMAL(65,${scale})) - CAST(? AS DECIMAL(65,${scale}))`;
    expr = `CAST(${c.unsigned ? `GREATEST(${diff}, 0)` : diff} AS CHAR)`;
  }
  const params = 'interval' in lag ? [values[0]] : [values[0], lag.amount];
  const { rows } = await s.query(`SELECT ${expr} AS f`, params, { typeCast: (f: CastField) => f.string() });
  return [String(rows[0].f)];
}

async function fingerprints(
  s: MySqlSession,
  unit: BoundaryUnit,
  where: string,
  values: unknown[],
): Promise<Map<string, number>> {
  const { rows } = await s.query(`SELECT ${fingerprintExpr(unit)} AS fp FROM ${unit.table} WHERE ${where}`, values, {
    rowsAsArray: true,
    typeCast: (f: CastField) => f.string(),
  });
  const out = new Map<string, number>();
  for (const [fp] of rows as string[][]) {
    if (!HEX.test(fp)) throw new IngestError('internal', `unexpected fingerprint ${JSON.stringify(fp)}`);
    out.set(fp, (out.get(fp) ?? 0) + 1);
  }
  return out;
}

/**
 * The previous position from a checkpoint (v2, or v1 `{ columns, values, key }` converted in this snapshot: the
 * rows v1 read at its last value — key ≤ its key — and the NULL-cursor rows count as exported).
 * @throws IngestError `checkpoint_invalid`
 * @internal
 */
export async function resumeFrom(
  s: MySqlSession,
  unit: BoundaryUnit,
  ck: MySqlCheckpoint | MySqlCheckpointV1 | null,
): Promise<Resume | null> {
  if (ck === null || ck === undefined) return null;
  const names = unit.cursor.map((c) => c.name);
  const invalid = (why: string) => invalidMySqlCheckpoint(unit.unitId, why);
  if (typeof ck !== 'object' || !Array.isArray(ck.columns)) throw invalid('expected { version, columns, values, … }');
  if (ck.columns.join('\u0000') !== names.join('\u0000'))
    throw invalid(
      `it was taken on cursor columns ${JSON.stringify(ck.columns)}, the unit now uses ${JSON.stringify(names)}`,
    );
  const texts = (v: unknown, n?: number) =>
    Array.isArray(v) && v.every((x) => typeof x === 'string') && (n === undefined || v.length === n);
  if ((ck as MySqlCheckpoint).version === 2) {
    const c = ck as MySqlCheckpoint;
    if (c.values !== null && !texts(c.values, names.length)) throw invalid('`values` does not fit the cursor');
    if (c.from !== null && !(texts(c.from) && c.from.length >= 1 && c.from.length <= names.length))
      throw invalid('`from` does not fit the cursor');
    if (typeof c.seen !== 'string') throw invalid('`seen` is not base64');
    return { values: c.values, from: c.from, seen: decodeSeen(c.seen, unit.unitId) };
  }
  const v1 = ck as MySqlCheckpointV1;
  if (!texts(v1.values, names.length)) throw invalid('expected { columns, values, key }');
  const keys = unit.key.map((k) => k.name);
  if (v1.key && (v1.key.columns?.join('\u0000') !== keys.join('\u0000') || !texts(v1.key.values, keys.length)))
    throw invalid(`its key columns ${JSON.stringify(v1.key.columns)} differ from ${JSON.stringify(keys)}`);
  const params: unknown[] = [];
  let read = `(${regular(unit)} AND ${tupleCmp(unit.cursor, v1.values, '>=', params)} AND ${tupleCmp(unit.cursor, v1.values, '<=', params)}`;
  if (v1.key) read += ` AND ${tupleCmp(unit.key, v1.key.values, '<=', params)}`;
  read += `) OR ${special(unit)}`;
  return { values: v1.values, from: v1.values, seen: await fingerprints(s, unit, read, params) };
}

/** The greatest regular cursor tuple (exact text) at or after `from`, or undefined. */
async function greatest(s: MySqlSession, unit: BoundaryUnit, from: string[] | null): Promise<string[] | undefined> {
  const params: unknown[] = [];
  const where = [regular(unit)];
  if (from) where.push(tupleCmp(unit.cursor, from, '>=', params));
  const { rows } = await s.query(
    `SELECT ${unit.cursor.map((c, i) => `${textExpr(c)} AS c${i}`).join(', ')} FROM ${unit.table}
     WHERE ${where.join(' AND ')} ORDER BY ${unit.cursor.map((c) => `${q(c)} DESC`).join(', ')} LIMIT 1`,
    params,
    { rowsAsArray: true, typeCast: (f: CastField) => f.string() },
  );
  return rows.length ? (rows[0] as string[]) : undefined;
}

/** A v2 plan in one snapshot: the main part's bounds (to split by key), the boundary slice and the checkpoint. @internal */
export interface BoundaryPlan {
  /** Nothing new: the checkpoint stays as it was. */
  empty: boolean;
  main: Extract<BoundaryBounds, { part: 'main' }> | null;
  boundary: Extract<BoundaryBounds, { part: 'boundary' }> | null;
  checkpoint: MySqlCheckpoint;
}

/** Plan a v2 read (incremental, or full: `resume` null). @internal */
export async function planBoundary(
  s: MySqlSession,
  unit: BoundaryUnit,
  resume: Resume | null,
  previous: MySqlCheckpoint | MySqlCheckpointV1 | null,
  ctx: IngestionContext | undefined,
): Promise<BoundaryPlan> {
  const columns = unit.cursor.map((c) => c.name);
  const top = await greatest(s, unit, resume?.from ?? null);
  const values = top ?? resume?.values ?? null;
  let from = top ? await windowFrom(s, unit, top) : (resume?.from ?? null);
  const boundaryOf = (start: string[] | null) => {
    const params: unknown[] = [];
    const region =
      start && values ? `(${windowWhere(unit, { from: start, values }, params)} OR ${special(unit)})` : special(unit);
    return fingerprints(s, unit, region, params);
  };
  let now = await boundaryOf(from);
  if (top && unit.lag && count(now) > unit.boundaryMaxRows) {
    // a lag window larger than the bound shrinks to the ties for this run; ties and NULL rows are always kept
    ctx?.logger?.warn(
      'MySqlSource: the lag window holds more rows than boundaryMaxRows; this run keeps the ties only',
      {
        unitId: unit.unitId,
        rows: count(now),
        boundaryMaxRows: unit.boundaryMaxRows,
      },
    );
    from = top;
    now = await boundaryOf(from);
  }
  const expect = new Map<string, number>();
  const seenBefore = new Map(resume?.seen ?? []);
  for (const [fp, n] of now) {
    const k = n - (seenBefore.get(fp) ?? 0);
    if (k > 0) expect.set(fp, k);
  }
  const rows = count(now);
  if (rows > unit.boundaryMaxRows)
    ctx?.logger?.warn('MySqlSource: the ties and NULL rows alone hold more than boundaryMaxRows (use a finer cursor)', {
      unitId: unit.unitId,
      rows,
      boundaryMaxRows: unit.boundaryMaxRows,
    });
  const checkpoint: MySqlCheckpoint = { version: 2, columns, values, from, seen: encodeSeen(now), seenRows: rows };
  // main: regular rows after the old position and below the new window
  const main: BoundaryPlan['main'] = top ? { v: 2, part: 'main', after: resume?.values ?? null, below: from } : null;
  const boundary: BoundaryPlan['boundary'] = {
    v: 2,
    part: 'boundary',
    old:
      resume?.values && resume.from
        ? { from: resume.from, values: resume.values, seen: encodeSeen(resume.seen) }
        : null,
    window: from && values ? { from, values } : null,
    expect: encodeSeen(expect),
  };
  const movedOn = !!top && (!resume?.values || resume.values.join('\u0000') !== top.join('\u0000'));
  const empty = !!resume && !movedOn && expect.size === 0;
  if (empty && previous && (previous as MySqlCheckpoint).version === 2)
    return { empty, main: null, boundary: null, checkpoint: previous as MySqlCheckpoint };
  return { empty, main, boundary, checkpoint };
}
