import type { FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/*
 * Tagged JSON: how a {@link Value} that JSON cannot express survives a trip through JSON text.
 *
 * A value JSON cannot hold is written as an object with exactly one key, the tag:
 *
 * | value                        | written as                      |
 * |------------------------------|---------------------------------|
 * | `123n` (bigint)              | `{"$i":"123"}`                  |
 * | `Date`                       | `{"$d":"2024-01-02T03:04:05.678Z"}` (`null` for an invalid date) |
 * | `Uint8Array`                 | `{"$b":"<base64>"}`             |
 * | `NaN`, `±Infinity`, `-0`     | `{"$f":"NaN"}` …                |
 * | a string in a typed column   | `{"$s":"…"}` (schema mode only) |
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
const TAGS = new Set([T_BIGINT, T_DATE, T_BYTES, T_FLOAT, T_STRING, T_OBJECT]);
const TAG_MARK = '{"$';

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

/** A fresh object whose keys are data only (`__proto__` included). */
function dataObject(): Record<string, JsonOut> {
  return Object.create(null) as Record<string, JsonOut>;
}

function tag(name: string, value: JsonOut): JsonOut {
  const o = dataObject();
  o[name] = value;
  return o;
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
      return Number.isFinite(v) && (v !== 0 || 1 / v > 0) ? v : tag(T_FLOAT, floatName(v));
    case 'bigint':
      return tag(T_BIGINT, v.toString());
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
        return tag(T_DATE, Number.isNaN(t) ? null : v.toISOString());
      }
      if (v instanceof Uint8Array) return tag(T_BYTES, bytesToBase64(v));
      if (!isPlainObject(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
        return toTaggedTree((v as { toJSON(): unknown }).toJSON());
      }
      const out = dataObject();
      let n = 0;
      let first = '';
      for (const k of Object.keys(v)) {
        if (n++ === 0) first = k;
        const val = (v as Record<string, unknown>)[k];
        if (val !== undefined) out[k] = toTaggedTree(val);
      }
      return n === 1 && TAGS.has(first) ? tag(T_OBJECT, out) : out;
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
      if (typeof payload === 'string' && /^-?\d+$/.test(payload)) return BigInt(payload);
      break;
    case T_DATE:
      if (payload === null) return new Date(Number.NaN);
      if (typeof payload === 'string') {
        const d = new Date(payload);
        if (!Number.isNaN(d.getTime())) return d;
      }
      break;
    case T_BYTES:
      if (typeof payload === 'string') return base64ToBytes(payload);
      break;
    case T_FLOAT:
      if (typeof payload === 'string' && Object.hasOwn(FLOATS, payload)) return FLOATS[payload];
      break;
    case T_STRING:
      if (typeof payload === 'string') return payload;
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
 * const text = encodeTaggedJson({ id: 1n, at: new Date(0) }); // '{"id":{"$i":"1"},"at":{"$d":"1970-01-01T00:00:00.000Z"}}'
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

type Conversion = 'int64' | 'timestamp' | 'binary';

/**
 * How rows of one schema are written: fields of a typed column (`int64`, `timestamp`, `binary`) are written
 * as bare strings (decimal digits, ISO-8601, base64) instead of tags, which is shorter and faster to read.
 * A value that does not fit its column falls back to the tagged form (strings escaped with `$s`).
 */
export interface RowPlan {
  /** Typed columns by name (own-property lookups only). */
  readonly typed: Map<string, Conversion>;
}

const CONVERTED: Partial<Record<FieldType, Conversion>> = { int64: 'int64', timestamp: 'timestamp', binary: 'binary' };

/** Compile the plan of a schema (`undefined` when nothing is typed). */
export function compileRowPlan(schema: RecordSchema | undefined): RowPlan | undefined {
  if (!schema) return undefined;
  const typed = new Map<string, Conversion>();
  for (const f of schema.fields) {
    const c = CONVERTED[f.type];
    if (c) typed.set(f.name, c);
  }
  return typed.size > 0 ? { typed } : undefined;
}

function encodeTyped(kind: Conversion, v: unknown): JsonOut {
  switch (kind) {
    case 'int64':
      if (typeof v === 'bigint') return v.toString();
      break;
    case 'timestamp':
      if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
      break;
    case 'binary':
      if (v instanceof Uint8Array) return bytesToBase64(v);
      break;
  }
  return typeof v === 'string' ? tag(T_STRING, v) : toTaggedTree(v);
}

function decodeTyped(kind: Conversion, v: unknown): Value {
  if (typeof v !== 'string') return typeof v === 'object' && v !== null ? fromTaggedTree(v) : (v as Value);
  switch (kind) {
    case 'int64':
      if (/^-?\d+$/.test(v)) return BigInt(v);
      break;
    case 'timestamp': {
      const d = new Date(v);
      if (!Number.isNaN(d.getTime())) return d;
      break;
    }
    case 'binary':
      return base64ToBytes(v);
  }
  throw new IngestError('staging_corrupt', `Malformed ${kind} value ${JSON.stringify(v.slice(0, 60))}`);
}

/** One row as one line of JSON text (no newline). */
export function encodeRow(row: Row, plan?: RowPlan): string {
  if (plan === undefined) {
    // The row itself is never a tag (decoding treats the top level as fields), so only its values matter.
    let plain = true;
    for (const k in row) {
      if (!isPlain(row[k])) {
        plain = false;
        break;
      }
    }
    if (plain) return JSON.stringify(row);
  }
  const out = dataObject();
  const typed = plan?.typed;
  for (const k in row) {
    const v = row[k];
    if (v === undefined) continue;
    const kind = typed?.get(k);
    if (kind !== undefined && v !== null) out[k] = encodeTyped(kind, v);
    else out[k] = isPlain(v) ? (v as JsonOut) : toTaggedTree(v);
  }
  return JSON.stringify(out);
}

/** Parse one line written by {@link encodeRow} with the same plan. */
export function decodeRow(line: string, plan?: RowPlan): Row {
  const parsed = JSON.parse(line) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new IngestError('staging_corrupt', 'A staged line is not a JSON object');
  }
  const row = parsed as Record<string, unknown>;
  if (plan !== undefined) {
    for (const [k, kind] of plan.typed) {
      if (Object.hasOwn(row, k)) {
        const v = row[k];
        if (v !== null) row[k] = decodeTyped(kind, v);
      }
    }
    if (line.includes(TAG_MARK)) {
      for (const k in row) {
        if (plan.typed.has(k)) continue;
        const e = row[k];
        if (typeof e === 'object' && e !== null) row[k] = fromTaggedTree(e);
      }
    }
    return row as Row;
  }
  if (line.includes(TAG_MARK)) decodeFields(row);
  return row as Row;
}
