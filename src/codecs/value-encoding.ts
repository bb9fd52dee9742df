import type { FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import { isoText, parseIsoTimestamp } from './timestamp-text.js';

/*
 * Tagged JSON: how a {@link Value} that JSON cannot express survives a trip through JSON text.
 *
 * A value JSON cannot hold is written as an object with exactly one key, the tag:
 *
 * | value                        | written as                      |
 * |------------------------------|---------------------------------|
 * | `123n` (bigint)              | `{"$i":"123"}`                  |
 * | `Date`                       | `{"$d":1704164645678}` (epoch milliseconds; `null` for an invalid date) |
 * | `Timestamp`                  | `{"$t":"2024-01-02T03:04:05.678901Z"}` (ISO, 6 digits; `Z` when zoned; `"infinity"`, `"-infinityZ"`) |
 * | `JsonText`                   | `{"$j":"{\"a\": 1.50}"}` (the text, verbatim)  |
 * | `Uint8Array`                 | `{"$b":"<base64>"}`             |
 * | `NaN`, `±Infinity`, `-0`     | `{"$f":"NaN"}` …                |
 * | a string in a string-typed column (`int64`, `binary`, `timestamp`) | `{"$s":"…"}` (schema mode only) |
 * | a number in a `timestamp` column | `{"$f":17}` (schema mode only) |
 * | an object that looks like a tag (one key, a tag name) | `{"$o":{…the object…}}` |
 *
 * Everything else is plain JSON. The `$o` escape makes the scheme unambiguous: any one-key object whose key
 * is a tag name is either a tag written by the encoder or an escaped user object. Keys are always data
 * (`__proto__` stays an own property). In JSON text the sequence `{"$` can only start an object whose first key
 * begins with `$` (inside strings the quote is escaped), so a line without it needs no tag walk at all.
 */

const T_BIGINT = '$i';
const T_DATE = '$d';
const T_BYTES = '$b';
const T_FLOAT = '$f';
const T_STRING = '$s';
const T_OBJECT = '$o';
const T_TIMESTAMP = '$t';
const T_JSON = '$j';
const TAGS = new Set([T_BIGINT, T_DATE, T_BYTES, T_FLOAT, T_STRING, T_OBJECT, T_TIMESTAMP, T_JSON]);
const TAG_MARK = '{"$';
const INTEGER = /^-?\d+$/;

type JsonOut = null | boolean | number | string | JsonOut[] | { [key: string]: JsonOut };

const objectProto = Object.prototype;

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === objectProto || proto === null;
}

/** True when JSON.stringify writes `v` exactly and decoding needs no tag: the fast path. */
function isPlain(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(v) && (v !== 0 || 1 / v > 0);
    case 'object': {
      if (v === null) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!isPlain(v[i])) return false;
        return true;
      }
      if (!isPlainObject(v)) return false;
      let n = 0;
      let first = '';
      for (const k in v) {
        if (n++ === 0) first = k;
        if (!isPlain(v[k])) return false;
      }
      return !(n === 1 && TAGS.has(first));
    }
    default:
      return false;
  }
}

/** Set `key` on `o` as an own data property (`__proto__` included). */
function setData(o: Record<string, JsonOut>, key: string, value: JsonOut): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

function base64ToBytes(s: string): Uint8Array {
  const buf = Buffer.from(s, 'base64');
  // A standalone copy: never a view into Node's shared Buffer pool.
  return new Uint8Array(buf);
}

function floatName(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return '-0';
}

/** A Timestamp as tag payload: ISO-8601 with 6 digits, `Z` when zoned (`infinityZ` for a zoned infinity). */
export function timestampText(t: Timestamp): string {
  return t.isFinite ? isoText(t) : t.zoned ? `${t.toISOString()}Z` : t.toISOString();
}

/** The Timestamp of a payload written by {@link timestampText}. @throws RangeError when malformed */
export function timestampOfText(s: string): Timestamp {
  const fast = parseIsoTimestamp(s);
  if (fast !== undefined) return fast;
  const zoned = s.endsWith('Z');
  const base = zoned ? s.slice(0, -1) : s;
  if (base === 'infinity') return Timestamp.infinite(1, { zoned });
  if (base === '-infinity') return Timestamp.infinite(-1, { zoned });
  return Timestamp.parse(s, { zoned });
}

const FLOATS: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
  '-0': -0,
};

/** Encode one value into its tagged-JSON tree. */
export function toTaggedTree(v: unknown): JsonOut {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) && (v !== 0 || 1 / v > 0) ? v : { $f: floatName(v) };
    case 'bigint':
      return { $i: v.toString() };
    case 'undefined':
      return null;
    case 'object': {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const out: JsonOut[] = new Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = toTaggedTree(v[i]);
        return out;
      }
      if (v instanceof Date) {
        const t = v.getTime();
        return { $d: Number.isNaN(t) ? null : t };
      }
      if (v instanceof Uint8Array) return { $b: bytesToBase64(v) };
      if (v instanceof Timestamp) return { $t: timestampText(v) };
      if (v instanceof JsonText) return { $j: v.text };
      if (!isPlainObject(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
        return toTaggedTree((v as { toJSON(): unknown }).toJSON());
      }
      const out: Record<string, JsonOut> = {};
      let n = 0;
      let first = '';
      for (const k of Object.keys(v)) {
        if (n++ === 0) first = k;
        const val = (v as Record<string, unknown>)[k];
        if (val !== undefined) setData(out, k, toTaggedTree(val));
      }
      return n === 1 && TAGS.has(first) ? { $o: out } : out;
    }
    default:
      throw new IngestError('row_rejected', `Cannot encode a value of type ${typeof v}`);
  }
}

/** Decode a tagged-JSON tree in place (objects and arrays parsed by JSON.parse are reused). */
export function fromTaggedTree(v: unknown): Value {
  if (typeof v !== 'object' || v === null) return v as Value;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (typeof e === 'object' && e !== null) v[i] = fromTaggedTree(e);
    }
    return v as Value[];
  }
  const o = v as Record<string, unknown>;
  let n = 0;
  let first = '';
  for (const k in o) {
    if (n++ === 0) first = k;
    else break;
  }
  if (n === 1 && TAGS.has(first)) return fromTag(first, o[first]);
  decodeFields(o);
  return o as Record<string, Value>;
}

function decodeFields(o: Record<string, unknown>): void {
  for (const k in o) {
    const e = o[k];
    if (typeof e === 'object' && e !== null) o[k] = fromTaggedTree(e);
  }
}

function fromTag(name: string, payload: unknown): Value {
  switch (name) {
    case T_BIGINT:
      if (typeof payload === 'string' && INTEGER.test(payload)) return BigInt(payload);
      break;
    case T_DATE:
      if (payload === null) return new Date(Number.NaN);
      if (typeof payload === 'number') return new Date(payload);
      if (typeof payload === 'string') {
        const d = new Date(payload);
        if (!Number.isNaN(d.getTime())) return d;
      }
      break;
    case T_BYTES:
      if (typeof payload === 'string') return base64ToBytes(payload);
      break;
    case T_FLOAT:
      if (typeof payload === 'number') return payload;
      if (typeof payload === 'string' && Object.hasOwn(FLOATS, payload)) return FLOATS[payload];
      break;
    case T_STRING:
      if (typeof payload === 'string') return payload;
      break;
    case T_TIMESTAMP:
      if (typeof payload === 'string') {
        try {
          return timestampOfText(payload);
        } catch {
          break;
        }
      }
      break;
    case T_JSON:
      if (typeof payload === 'string') return new JsonText(payload);
      break;
    case T_OBJECT:
      if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) {
        decodeFields(payload as Record<string, unknown>);
        return payload as Record<string, Value>;
      }
      break;
  }
  throw new IngestError(
    'staging_corrupt',
    `Malformed tagged value ${JSON.stringify({ [name]: payload }).slice(0, 120)}`,
  );
}

/**
 * Serialize any {@link Value} as tagged JSON text (see the module notes for the tags).
 *
 * @example
 * ```ts
 * import { encodeTaggedJson, decodeTaggedJson } from '@nucleus/ingestion';
 * const text = encodeTaggedJson({ id: 1n, at: new Date(0) }); // '{"id":{"$i":"1"},"at":{"$d":0}}'
 * decodeTaggedJson(text); // { id: 1n, at: Date(0) }
 * ```
 * @throws IngestError `row_rejected` for a value that is no {@link Value} (a function, a symbol).
 * @public
 */
export function encodeTaggedJson(value: Value): string {
  return JSON.stringify(isPlain(value) ? value : toTaggedTree(value));
}

/**
 * Parse tagged JSON text written by {@link encodeTaggedJson} back into the exact {@link Value}.
 * @throws IngestError `staging_corrupt` when the text is not valid tagged JSON.
 * @public
 */
export function decodeTaggedJson(text: string): Value {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new IngestError('staging_corrupt', `Invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  return text.includes(TAG_MARK) ? fromTaggedTree(parsed) : (parsed as Value);
}

// --- rows -------------------------------------------------------------------------------------------------

/** @internal */
export type Conversion = 'int64' | 'timestamp' | 'binary';

/**
 * How rows of one schema are written: fields of a typed column are written bare instead of tagged, which is
 * shorter and faster to read: `int64` bigints as decimal digits, `binary` bytes as base64, `timestamp` columns'
 * `Timestamp`s as ISO-8601 text (`Z` when zoned) and `Date`s as epoch milliseconds. A value that does not fit its
 * column falls back to the tagged form (strings escaped with `$s`, so a bare string is never ambiguous).
 */
export interface RowPlan {
  /** Names of the typed columns. */
  readonly names: readonly string[];
  /** Conversion of each typed column, parallel to `names`. */
  readonly kinds: readonly Conversion[];
  /** The same names, for lookups. */
  readonly typed: ReadonlySet<string>;
  /** The conversion of each typed column by name. */
  readonly kindOf: ReadonlyMap<string, Conversion>;
}

const CONVERTED: Partial<Record<FieldType, Conversion>> = { int64: 'int64', timestamp: 'timestamp', binary: 'binary' };

/** Compile the plan of a schema (`undefined` when nothing is typed). */
export function compileRowPlan(schema: RecordSchema | undefined): RowPlan | undefined {
  if (!schema) return undefined;
  const names: string[] = [];
  const kinds: Conversion[] = [];
  for (const f of schema.fields) {
    const c = CONVERTED[f.type];
    if (c && !names.includes(f.name)) {
      names.push(f.name);
      kinds.push(c);
    }
  }
  return names.length > 0
    ? { names, kinds, typed: new Set(names), kindOf: new Map(names.map((n, i) => [n, kinds[i]])) }
    : undefined;
}

function encodeTyped(kind: Conversion, v: unknown): JsonOut {
  switch (kind) {
    case 'int64':
      if (typeof v === 'bigint') return v.toString();
      break;
    case 'timestamp':
      if (v instanceof Timestamp) return timestampText(v);
      if (v instanceof Date) {
        const t = v.getTime();
        if (!Number.isNaN(t)) return t;
      } else if (typeof v === 'number' && Number.isFinite(v)) {
        return { $f: v };
      }
      break;
    case 'binary':
      if (v instanceof Uint8Array) return bytesToBase64(v);
      break;
  }
  // The bare form of every typed column is a string: a string value must say it is one.
  return typeof v === 'string' ? { $s: v } : toTaggedTree(v);
}

function decodeTyped(kind: Conversion, v: unknown): Value {
  if (typeof v === 'object') return v === null ? null : fromTaggedTree(v);
  switch (kind) {
    case 'int64':
      if (typeof v === 'string' && INTEGER.test(v)) return BigInt(v);
      break;
    case 'timestamp':
      if (typeof v === 'number') return new Date(v);
      if (typeof v === 'string') {
        try {
          return timestampOfText(v);
        } catch {
          // written before Timestamp existed (a bare string then was a string); fall through
          return v;
        }
      }
      break;
    case 'binary':
      if (typeof v === 'string') return base64ToBytes(v);
      break;
  }
  if (typeof v === 'boolean' || typeof v === 'number') return v;
  throw new IngestError('staging_corrupt', `Malformed ${kind} value ${JSON.stringify(String(v).slice(0, 60))}`);
}

/** JSON text of object keys (`"name":`), cached: rows of one table repeat the same few keys. */
const keyTexts = new Map<string, string>();
/** @internal */
export function keyText(k: string): string {
  let t = keyTexts.get(k);
  if (t === undefined) {
    t = `${JSON.stringify(k)}:`;
    if (keyTexts.size < 4096) keyTexts.set(k, t);
  }
  return t;
}

/** JSON text of a value of a typed column (what `JSON.stringify(encodeTyped(kind, v))` writes). */
function typedText(kind: Conversion, v: unknown): string {
  if (kind === 'int64' && typeof v === 'bigint') return `"${v.toString()}"`;
  // the text of a Timestamp holds digits, `-`, `+`, `:`, `.`, `T`, `Z` and letters only: nothing to escape
  if (kind === 'timestamp' && v instanceof Timestamp) return `"${timestampText(v)}"`;
  return JSON.stringify(encodeTyped(kind, v));
}

/** JSON text of an untyped value (what `JSON.stringify` of its tagged tree writes). */
function valueText(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) && (v !== 0 || 1 / v > 0) ? String(v) : `{"$f":"${floatName(v)}"}`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return `{"$i":"${v.toString()}"}`;
    case 'object':
      if (v === null) return 'null';
      if (v instanceof JsonText) return `{"$j":${JSON.stringify(v.text)}}`;
      if (v instanceof Timestamp) return `{"$t":"${timestampText(v)}"}`;
      return JSON.stringify(isPlain(v) ? v : toTaggedTree(v));
    default:
      return JSON.stringify(toTaggedTree(v));
  }
}

/**
 * JSON text of one field value as {@link encodeRow} writes it: `null`, the bare form of a typed column (`kind` from
 * the row plan) or the tagged form. For transcoders that write rows field by field.
 * @internal
 */
export function fieldJsonText(v: unknown, kind: Conversion | undefined): string {
  return v === null ? 'null' : kind !== undefined ? typedText(kind, v) : valueText(v);
}

/**
 * One row as one line of JSON text (no newline): the same text as `JSON.stringify` of the row with its values
 * tagged, written field by field (no copy of the row, no tag objects for the common values).
 */
export function encodeRow(row: Row, plan?: RowPlan): string {
  // The row itself is never a tag (decoding treats the top level as fields), so only its values matter.
  const kindOf = plan?.kindOf;
  let out = '{';
  let first = true;
  for (const k in row) {
    if (!Object.hasOwn(row, k)) continue;
    const v = row[k];
    if (v === undefined) continue;
    const kind = kindOf?.get(k);
    const text = v === null ? 'null' : kind !== undefined ? typedText(kind, v) : valueText(v);
    if (first) first = false;
    else out += ',';
    out += keyText(k);
    out += text;
  }
  return `${out}}`;
}

/** Parse one line written by {@link encodeRow} with the same plan. */
export function decodeRow(line: string, plan?: RowPlan): Row {
  return reviveRow(JSON.parse(line), plan, line.includes(TAG_MARK));
}

/** Turn one parsed line into a row: typed columns converted, tags resolved (in place). */
function reviveRow(parsed: unknown, plan: RowPlan | undefined, hasTags: boolean): Row {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new IngestError('staging_corrupt', 'A staged line is not a JSON object');
  }
  const row = parsed as Record<string, unknown>;
  if (plan !== undefined) {
    const { names, kinds } = plan;
    for (let i = 0; i < names.length; i++) {
      const k = names[i];
      if (Object.hasOwn(row, k)) {
        const v = row[k];
        if (v !== null) row[k] = decodeTyped(kinds[i], v);
      }
    }
    if (hasTags) {
      for (const k in row) {
        if (plan.typed.has(k)) continue;
        const e = row[k];
        if (typeof e === 'object' && e !== null) row[k] = fromTaggedTree(e);
      }
    }
    return row as Row;
  }
  if (hasTags) decodeFields(row);
  return row as Row;
}
