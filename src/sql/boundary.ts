/**
 * The incremental-boundary algorithm of docs/decisions/0005-incremental-boundaries.md, once for every SQL engine:
 * resume AT the last cursor value, inclusive, and skip what was already exported there, by row fingerprint. Pure: the
 * checkpoint codec, the fingerprint multisets, and the regions a read or a planned slice takes, written as SQL from the
 * engine's {@link SourceDialect} expressions. The queries that run them are in `source-plan.ts`.
 *
 * A run with checkpoint `r` and, in its snapshot, the greatest cursor tuple `upper` and window start `from` reads:
 * - main: regular rows (no NULL or non-finite cursor column) after `r.values` and below `from` — no dedupe;
 * - old window: regular rows in `[r.from, r.values]` below `from` — minus the copies in `r.seen`;
 * - boundary: regular rows in `[from, upper]` and the special rows (NULL or non-finite cursor) — minus the copies in
 *   `r.seen`, and in a planned slice at most the copies the plan saw (`expect`), so a row committed after the plan
 *   waits for the next run instead of being exported twice.
 * @internal
 */
import { invalidCheckpoint, type SqlCheckpoint } from './source-config.js';
import type { Dedupe, SliceQuery, SourceColumn, SourceDialect, SourceUnit, SqlParams } from './source-dialect.js';

/** The dialect expressions the pure part uses. */
type Sql<C extends SourceColumn> = Pick<
  SourceDialect<C, unknown>,
  'quote' | 'param' | 'cast' | 'sentinels' | 'tupleCompare' | 'fingerprint' | 'dedupeSql' | 'select'
>;

/** Bound parameters of one statement. */
export class Params implements SqlParams {
  readonly values: unknown[] = [];
  constructor(private readonly d: Pick<SourceDialect<any, unknown>, 'param' | 'cast'>) {}
  /** A parameter as it is. */
  raw(value: unknown): string {
    this.values.push(value);
    return this.d.param(this.values.length);
  }
  /** A text value cast to the column's type. */
  add<C extends SourceColumn>(value: string, c: C): string {
    return this.d.cast(this.raw(value), c);
  }
}

/**
 * How many rows of the tie groups (the rows tying at the greatest cursor tuple, and the rows whose cursor is NULL or
 * non-finite) a checkpoint remembers by fingerprint: beyond it, a group is remembered by its greatest key instead
 * (ADR 0005, "Amendment: bounded checkpoints"). 128 fingerprints are 1,368 base64 characters, so the checkpoint, the
 * committed run state and the receipt each stay under 4 KiB. Mutable for tests only.
 * @internal
 */
export const boundaryLimits = { tieFingerprints: 128 };

/** Where the previous run left off (a version-1 checkpoint converted, see `source-plan.ts`). */
export interface Resume {
  /** Greatest regular cursor tuple exported, or null. */
  values: string[] | null;
  /** Window start (inclusive prefix), or null. */
  from: string[] | null;
  /** Fingerprints (base64) of the window and of the special rows already exported (the groups kept by fingerprint). */
  seen: string;
  /** The ties at `values` were exported up to this key (in the server's order of the key), instead of `seen`. */
  tieKey?: string[];
  /** The special rows were exported up to this key, instead of `seen`. */
  specialKey?: string[];
}

/** Bounds of a planned slice (JSON in the run state). */
export interface SliceBounds {
  [k: string]: any;
  planned: true;
  /** Read the rows below the new window (old window deduped), in the primary-key range. */
  main: boolean;
  /** Read the new window and the special rows, deduped, at most as many copies as the plan saw. */
  boundary: boolean;
  from: string[] | null;
  upper: string[] | null;
  /** Fingerprints the plan saw in the new window in this slice's key range (base64), of the groups kept by fingerprint. */
  expect: string;
  /** The new window (the ties at `upper`) is read up to this key, the greatest the plan saw, instead of by `expect`. */
  tieKey?: string[];
  /** The special rows are read up to this key, the greatest the plan saw, instead of by `expect`. */
  specialKey?: string[];
  pkGt?: string;
  pkLe?: string;
  empty?: boolean;
  /**
   * The slice is one of at most four that together read most of the table: a scan of the table reads its key range
   * for less than the key's index does (PostgreSQL, two halves of 1,000,000 rows by psql: 1.09–1.13 s against 1.40–1.45 s).
   */
  scan?: boolean;
}

/** One region of a read: its conditions, their parameters, and its dedupe. */
export interface Part {
  where: string[];
  p: Params;
  dedupe?: Dedupe;
}

/** Multiset of fingerprints (16 hex digits) → sorted base64 (a checkpoint's `seen`). */
export function encodeSeen(fps: Map<string, number>): string {
  const all: string[] = [];
  for (const [fp, n] of fps) for (let i = 0; i < n; i++) all.push(fp);
  return Buffer.from(all.sort().join(''), 'hex').toString('base64');
}

/** base64 → multiset of hex fingerprints. */
export function decodeSeen(text: string): Map<string, number> {
  const buf = Buffer.from(text, 'base64');
  const out = new Map<string, number>();
  for (let i = 0; i + 8 <= buf.length; i += 8) {
    const fp = buf.subarray(i, i + 8).toString('hex');
    out.set(fp, (out.get(fp) ?? 0) + 1);
  }
  return out;
}

/** Count fingerprints into a multiset. */
export function multiset(fps: Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const fp of fps) out.set(fp, (out.get(fp) ?? 0) + 1);
  return out;
}

/** The n-th copy of a fingerprint is kept when `seen` holds fewer than n copies and `expect` (if any) at least n. */
export function dedupeFilter(d: Dedupe): (fp: string) => boolean {
  const seen = decodeSeen(d.seen);
  const expect = d.expect === null ? undefined : decodeSeen(d.expect);
  const copies = new Map<string, number>();
  return (fp) => {
    const n = (copies.get(fp) ?? 0) + 1;
    copies.set(fp, n);
    return n > (seen.get(fp) ?? 0) && (expect === undefined || n <= (expect.get(fp) ?? 0));
  };
}

const same = (a: readonly unknown[], b: readonly unknown[]) => a.join('\u0000') === b.join('\u0000');
const texts = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Validate a checkpoint of either version against the unit's cursor and key columns.
 * @throws IngestError `checkpoint_invalid`
 */
export function parseCheckpoint(
  unitId: string,
  names: string[],
  keys: string[],
  ck: unknown,
):
  | ({ version: 2 | 3; values: string[] | null; from: string[] | null; seen: string } & KeyPositions)
  | { version: 1; values: string[]; key: string[] | null } {
  const o = ck as Record<string, unknown>;
  if (typeof ck !== 'object' || ck === null || Array.isArray(ck) || !Array.isArray(o.columns))
    throw invalidCheckpoint(unitId, 'it is not a SQL source checkpoint');
  if (!same(o.columns, names))
    throw invalidCheckpoint(
      unitId,
      `it was taken on cursor columns ${JSON.stringify(o.columns)}, the unit now uses ${JSON.stringify(names)}`,
    );
  if (o.version === 2 || o.version === 3) {
    const okValues = o.values === null || (texts(o.values) && o.values.length === names.length);
    const okFrom =
      o.from === null || (texts(o.from) && o.from.length >= 1 && o.from.length <= names.length && o.values !== null);
    const seen = o.seen;
    if (!okValues || !okFrom || typeof seen !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(seen))
      throw invalidCheckpoint(unitId, 'its version-2 fields are malformed');
    if (Buffer.from(seen, 'base64').length % 8)
      throw invalidCheckpoint(unitId, '`seen` is not a list of 8-byte fingerprints');
    if (o.values !== null && o.from === null) throw invalidCheckpoint(unitId, 'it has values but no window');
    const out = {
      version: o.version as 2 | 3,
      values: o.values as string[] | null,
      from: o.from as string[] | null,
      seen,
    };
    return o.version === 2 ? out : { ...out, ...parseByKey(unitId, keys, o) };
  }
  if (o.version !== undefined || !('values' in o))
    throw invalidCheckpoint(unitId, `its format (version ${JSON.stringify(o.version ?? null)}) is unknown`);
  if (!texts(o.values) || o.values.length !== names.length)
    throw invalidCheckpoint(
      unitId,
      `its values ${JSON.stringify(o.values)} are not ${names.length} text value(s) (version 1 wrote no usable value for an infinite cursor)`,
    );
  const k = o.key as { columns?: unknown; values?: unknown } | null | undefined;
  if (k && (!Array.isArray(k.columns) || !same(k.columns, keys) || !texts(k.values) || k.values.length !== keys.length))
    throw invalidCheckpoint(unitId, `its key columns ${JSON.stringify(k.columns)} differ from ${JSON.stringify(keys)}`);
  return { version: 1, values: o.values, key: k ? (k.values as string[]) : null };
}

/** Where a tie group too large to fingerprint was exported up to (a version-3 checkpoint's `byKey`). */
interface KeyPositions {
  tieKey?: string[];
  specialKey?: string[];
}

/** A version-3 checkpoint's `byKey`: the key columns it was taken on (the unit's) and at least one position. */
function parseByKey(unitId: string, keys: string[], o: Record<string, unknown>): KeyPositions {
  const b = o.byKey as Record<string, unknown> | undefined;
  const position = (v: unknown) => v === undefined || (texts(v) && v.length === keys.length);
  if (!b || typeof b !== 'object' || !position(b.ties) || !position(b.special) || (!b.ties && !b.special))
    throw invalidCheckpoint(unitId, 'its version-3 `byKey` is malformed');
  if (!Array.isArray(b.columns) || !same(b.columns, keys))
    throw invalidCheckpoint(
      unitId,
      `its tie groups were ordered by key columns ${JSON.stringify(b.columns)}, the unit's key is now ${JSON.stringify(keys)}`,
    );
  if (b.ties && o.values === null) throw invalidCheckpoint(unitId, 'it has a tie key but no values');
  if (b.ties && !same(o.from as string[], o.values as string[]))
    throw invalidCheckpoint(unitId, 'it has a tie key but its window is not the ties');
  const out: KeyPositions = {};
  if (b.ties) out.tieKey = b.ties as string[];
  if (b.special) out.specialKey = b.special as string[];
  return out;
}

/**
 * The checkpoint of a position: version 2 when every tie group is kept by fingerprint, version 3 (with `byKey`) when
 * one is kept by its greatest key (so an earlier version refuses it instead of exporting the group again).
 */
export function toCheckpoint(
  unit: SourceUnit<SourceColumn>,
  r: { upper: string[] | null; from: string[] | null; seen: string; seenRows: number } & KeyPositions,
): SqlCheckpoint {
  const columns = unit.cursor.map((c) => c.name);
  const fingerprint = unit.fingerprint.map((c) => c.name);
  const base = { columns, values: r.upper, from: r.from, seen: r.seen, seenRows: r.seenRows };
  if (!r.tieKey && !r.specialKey) return { version: 2, ...base, fingerprint };
  const byKey: NonNullable<SqlCheckpoint['byKey']> = { columns: unit.key.map((c) => c.name) };
  if (r.tieKey) byKey.ties = r.tieKey;
  if (r.specialKey) byKey.special = r.specialKey;
  // `fingerprint` only matters while `seen` holds any (keepFingerprint in source-plan.ts)
  return { version: 3, ...base, ...(r.seen ? { fingerprint } : {}), byKey };
}

/** SQL builders of one unit in one dialect. */
export function regions<C extends SourceColumn>(d: Sql<C>, unit: SourceUnit<C>) {
  const col = (c: C) => `t.${d.quote(c.name)}`;
  const finite = (c: C) => {
    const s = d.sentinels(c);
    return s ? `${col(c)} IS NOT NULL AND ${col(c)} NOT IN (${s})` : `${col(c)} IS NOT NULL`;
  };
  // equalities and IS NULL, which an index on the cursor serves
  const nonFinite = (c: C) => {
    const s = d.sentinels(c);
    return s ? `${col(c)} IS NULL OR ${col(c)} IN (${s})` : `${col(c)} IS NULL`;
  };
  const regular = `(${unit.cursor.map(finite).join(' AND ')})`;
  const special = `(${unit.cursor.map(nonFinite).join(' OR ')})`;
  /** `(c1, …, ck) op (v1, …, vk)` over the first `values.length` columns of `cols`. */
  const compare = (cols: C[], op: '>' | '>=' | '<' | '<=', values: string[], p: Params): string => {
    const k = Math.min(cols.length, values.length);
    if (d.tupleCompare === 'row' || k === 1) {
      const lhs = cols.slice(0, k).map(col);
      const rhs = cols.slice(0, k).map((c, i) => p.add(values[i], c));
      return k === 1 ? `${lhs[0]} ${op} ${rhs[0]}` : `ROW(${lhs.join(', ')}) ${op} ROW(${rhs.join(', ')})`;
    }
    const parts: string[] = [];
    for (let i = 0; i < k; i++) {
      const eqs = cols.slice(0, i).map((c, j) => `${col(c)} = ${p.add(values[j], c)}`);
      eqs.push(`${col(cols[i])} ${i === k - 1 ? op : op[0]} ${p.add(values[i], cols[i])}`);
      parts.push(`(${eqs.join(' AND ')})`);
    }
    return `(${parts.join(' OR ')})`;
  };
  const between = (from: string[], upper: string[], p: Params) =>
    `(${regular} AND ${compare(unit.cursor, '>=', from, p)} AND ${compare(unit.cursor, '<=', upper, p)})`;
  /** Regular rows after the previous position (above its window). */
  const afterResume = (r: Resume | null, p: Params) => (r?.values ? compare(unit.cursor, '>', r.values, p) : 'TRUE');
  /** Regular rows inside the previous window (deduped against `seen`). */
  const inOldWindow = (r: Resume | null, p: Params) =>
    r?.values && r.from
      ? `(${compare(unit.cursor, '>=', r.from, p)} AND ${compare(unit.cursor, '<=', r.values, p)})`
      : 'FALSE';
  /** `inOldWindow` minus the ties the previous run exported by key (`key <= tieKey`). */
  const oldWindow = (r: Resume | null, p: Params) =>
    r?.tieKey && r.values && r.from
      ? `(${inOldWindow(r, p)} AND ${compare(unit.key, '>', r.tieKey, p)})`
      : inOldWindow(r, p);
  /** The special rows minus those the previous run exported by key (`key <= specialKey`). */
  const oldSpecial = (r: Resume | null, p: Params) =>
    r?.specialKey ? `(${special} AND ${compare(unit.key, '>', r.specialKey, p)})` : special;
  /** A primary-key range; the first range also takes rows whose (configured) key is NULL. */
  const pkRange = (b: { pkGt?: string; pkLe?: string } | undefined, p: Params): string[] => {
    if (!b || unit.key.length !== 1) return [];
    const k = unit.key[0];
    const out: string[] = [];
    if (b.pkGt !== undefined) out.push(`${col(k)} > ${p.add(b.pkGt, k)}`);
    if (b.pkLe !== undefined)
      out.push(
        b.pkGt === undefined
          ? `(${col(k)} <= ${p.add(b.pkLe, k)} OR ${col(k)} IS NULL)`
          : `${col(k)} <= ${p.add(b.pkLe, k)}`,
      );
    return out;
  };
  const fingerprint = d.fingerprint(unit.fingerprint.map(col), unit.fingerprint);
  return {
    cursor: unit.cursor,
    col,
    regular,
    special,
    compare,
    between,
    afterResume,
    inOldWindow,
    oldWindow,
    oldSpecial,
    pkRange,
    fingerprint,
  };
}

/**
 * The regions a read takes: an unplanned read (`bounds` not planned: everything after the checkpoint), a slice of this
 * version's plan, or a slice planned by an earlier version and resumed after the upgrade (its own window).
 * `fresh` gives each region its parameters (one list for a single UNION ALL statement, or one per statement).
 */
export function readParts<C extends SourceColumn>(
  d: Sql<C>,
  unit: SourceUnit<C>,
  r: Resume | null,
  bounds: unknown,
  fresh: () => Params,
): Part[] {
  const g = regions(d, unit);
  const o = bounds && typeof bounds === 'object' ? (bounds as Record<string, any>) : undefined;
  if (o?.v === 2) return legacyMySqlParts(g, o, fresh);
  if (o && !o.planned) return readParts(d, unit, r, undefined, fresh);
  if (o?.empty) return [];
  if (o && typeof o.main !== 'boolean') {
    if (unit.cursor.length) return [version1Part(g, unit, o, fresh())];
    return readParts(d, unit, r, { ...o, main: true, boundary: false }, fresh);
  }
  const b = o as SliceBounds | undefined;
  const parts: Part[] = [];
  if (!b || b.main) {
    const p = fresh();
    if (!unit.cursor.length) return [{ where: ['TRUE', ...g.pkRange(b, p)], p }];
    const below = (q: Params) => (b ? [b.from ? g.compare(unit.cursor, '<', b.from, q) : 'FALSE'] : []);
    parts.push({ where: [g.regular, g.afterResume(r, p), ...below(p), ...g.pkRange(b, p)], p });
    const q = fresh();
    const dedupe = r?.seen ? { seen: r.seen, expect: null } : undefined;
    // unplanned: the old window and the special rows, deduped against the checkpoint
    if (!b) parts.push({ where: [`(${g.oldWindow(r, q)} OR ${g.oldSpecial(r, q)})`], p: q, dedupe });
    else if (r?.from)
      parts.push({ where: [g.regular, g.oldWindow(r, q), ...below(q), ...g.pkRange(b, q)], p: q, dedupe });
  }
  if (b?.boundary && unit.cursor.length) {
    const window = (p: Params) =>
      b.from && b.upper
        ? `(${g.between(b.from, b.upper, p)} AND (${g.afterResume(r, p)} OR ${g.oldWindow(r, p)}))`
        : 'FALSE';
    // the groups kept by fingerprint: `expect` holds this key range's fingerprints only; the range condition lets the
    // server skip the others
    const p = fresh();
    const fps = [b.tieKey ? 'FALSE' : window(p), b.specialKey ? 'FALSE' : g.oldSpecial(r, p)];
    if (fps.some((x) => x !== 'FALSE'))
      parts.push({
        where: [`(${fps.join(' OR ')})`, ...g.pkRange(b, p)],
        p,
        dedupe: { seen: r?.seen ?? '', expect: b.expect },
      });
    // the groups kept by key: up to the greatest key the plan saw (a row committed later with a greater key waits
    // for the next run, which reads `key > tieKey`)
    if (b.tieKey || b.specialKey) {
      const q = fresh();
      const upTo = (key: string[]) => g.compare(unit.key, '<=', key, q);
      const keyed = [
        b.tieKey ? `(${window(q)} AND ${upTo(b.tieKey)})` : 'FALSE',
        b.specialKey ? `(${g.oldSpecial(r, q)} AND ${upTo(b.specialKey)})` : 'FALSE',
      ];
      const dedupe = r?.seen ? { seen: r.seen, expect: null } : undefined;
      parts.push({ where: [`(${keyed.join(' OR ')})`, ...g.pkRange(b, q)], p: q, dedupe });
    }
  }
  return parts;
}

/** A slice planned by version 1 (`{ planned, lower, upper, includeNulls, pkGt, pkLe }`): `(lower, upper]` as it read it. */
function version1Part<C extends SourceColumn>(
  g: ReturnType<typeof regions<C>>,
  unit: SourceUnit<C>,
  b: Record<string, any>,
  p: Params,
): Part {
  const where: string[] = [];
  // `upper` is the cursor tuple (PostgreSQL) or `{ values, key }` (MySQL); `lower` a version-1 checkpoint
  const tuple = (t: { values?: string[]; key?: { values?: string[] } | string[] | null } | null | undefined) => {
    const key = Array.isArray(t?.key) ? t.key : t?.key?.values;
    return key && unit.key.length
      ? { cols: [...unit.cursor, ...unit.key], values: [...t!.values!, ...key] }
      : { cols: unit.cursor, values: t!.values! };
  };
  if (b.lower?.values) {
    const lo = tuple(b.lower);
    where.push(g.compare(lo.cols, '>', lo.values, p));
  }
  const nulls = unit.cursor.map((c) => `${g.col(c)} IS NULL`).join(' OR ');
  const upper = Array.isArray(b.upper) ? { values: b.upper as string[] } : b.upper;
  if (upper?.values) {
    const hi = tuple(upper);
    const le = g.compare(hi.cols, '<=', hi.values, p);
    where.push(b.includeNulls ? `(${le} OR ${nulls})` : le);
  } else where.push(b.includeNulls ? `(${nulls})` : 'FALSE');
  where.push(...g.pkRange(b, p));
  return { where, p };
}

/** A slice of MySqlSource's earlier plans (`{ v: 2, part: 'main' | 'boundary' | 'empty' }`), self-contained. */
function legacyMySqlParts<C extends SourceColumn>(
  g: ReturnType<typeof regions<C>>,
  b: Record<string, any>,
  fresh: () => Params,
): Part[] {
  if (b.part === 'main') {
    const p = fresh();
    const where = [g.regular];
    if (b.after) where.push(g.compare(g.cursor, '>', b.after, p));
    if (b.below) where.push(g.compare(g.cursor, '<', b.below, p));
    return [{ where: [...where, ...g.pkRange(b, p)], p }];
  }
  if (b.part !== 'boundary') return [];
  const parts: Part[] = [];
  if (b.old) {
    const p = fresh();
    const where = [g.between(b.old.from, b.old.values, p)];
    if (b.window) where.push(g.compare(g.cursor, '<', b.window.from, p));
    parts.push({ where, p, dedupe: { seen: b.old.seen, expect: null } });
  }
  const p = fresh();
  const region = b.window ? `(${g.between(b.window.from, b.window.values, p)} OR ${g.special})` : g.special;
  parts.push({ where: [region], p, dedupe: { seen: '', expect: b.expect } });
  return parts;
}

/** The statements of a read: one UNION ALL when the engine dedupes in SQL, else one per region. */
export function sliceQueries<C extends SourceColumn>(d: Sql<C>, unit: SourceUnit<C>, parts: Part[]): SliceQuery[] {
  const g = regions(d, unit);
  const cols = unit.columns.map((c) => d.select?.(g.col(c), c) ?? g.col(c)).join(', ');
  const from = (part: Part) => `${unit.table} t WHERE ${part.where.join(' AND ')}`;
  if (!d.dedupeSql) {
    return parts.map((part) =>
      part.dedupe
        ? {
            text: `SELECT ${cols}, ${g.fingerprint} AS ${d.quote(FP)} FROM ${from(part)}`,
            values: part.p.values,
            dedupe: part.dedupe,
          }
        : { text: `SELECT ${cols} FROM ${from(part)}`, values: part.p.values },
    );
  }
  if (!parts.length) return [];
  const texts = parts.map((part) =>
    part.dedupe
      ? d.dedupeSql!(
          unit.columns.map((c) => d.quote(c.name)),
          g.fingerprint,
          from(part),
          part.p,
          part.dedupe,
        )
      : `SELECT ${cols} FROM ${from(part)}`,
  );
  return [
    { text: texts.length === 1 ? texts[0] : texts.map((x) => `(${x})`).join(' UNION ALL '), values: parts[0].p.values },
  ];
}

/** Name of the fingerprint column a client-side dedupe reads. */
export const FP = '__nucleus_fp';
