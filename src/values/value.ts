import { Timestamp } from './timestamp.js';

// The row value model and its exact JSON in one module: `Value` holds `JsonText`, whose methods take and return a
// `Value` through the exact parser and serializer below, which know `JsonText` — apart, they would import each other.

/**
 * A JSON value: what checkpoints, session refs, provenance and config are made of.
 * @public
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A row value. Richer than {@link Json}: `bigint`, `Date`, `Uint8Array`, {@link Timestamp} and {@link JsonText}
 * survive staging exactly (see `docs/decisions/0003-exact-values.md`).
 *
 * - `Timestamp`: a timestamp to the microsecond or ±infinity (what the PostgreSQL source returns for
 *   `timestamp`/`timestamptz`); `Date` keeps working for values a user produces (milliseconds).
 * - `JsonText`: JSON exactly as the source wrote it (what the PostgreSQL source returns for `json`/`jsonb`).
 * - exact strings for decimals (`'1.50'`, `'NaN'`), dates (`'2024-01-31'`, `'infinity'`, `'0044-03-15 BC'`) and
 *   every type a database prints as text (time, interval, uuid, inet, ranges, …); numbers keep `NaN`, `±Infinity`, `-0`.
 * @public
 */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Timestamp
  | JsonText
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

/**
 * One record. Keys are data: a key such as `__proto__` is an own property, never a prototype.
 * @public
 */
export type Row = Record<string, Value>;

const BRAND = Symbol.for('@nucleus/ingestion.JsonText');

/** `JSON.rawJSON` (Node 21+): lets `JSON.stringify` write a text verbatim. */
const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/**
 * JSON kept exactly as the source wrote it: `1.50` stays `1.50`, `1.00000000000000000001` keeps every digit,
 * integers above 2^53 are never rounded, key order and duplicate keys of PostgreSQL `json` are kept. The PostgreSQL
 * source returns `json`/`jsonb` values as `JsonText`; every codec returns it as `JsonText`; sinks write
 * {@link JsonText.text} as is.
 *
 * The text is taken as given, not checked: a sink that validates JSON (PostgreSQL) rejects a malformed one.
 * Instances are immutable; `instanceof JsonText` also recognises instances made by another copy of this package.
 *
 * @example
 * ```ts
 * import { JsonText } from '@nucleus/ingestion';
 * const j = new JsonText('{"price": 1.50, "id": 12345678901234567890}');
 * j.text;    // '{"price": 1.50, "id": 12345678901234567890}'
 * j.parse(); // { price: 1.5, id: 12345678901234567890n }
 * JsonText.from({ id: 12345678901234567890n }).text; // '{"id":12345678901234567890}'
 * ```
 * @public
 */
export class JsonText {
  /** The JSON text, exactly as written. */
  readonly text: string;

  /**
   * @param text - JSON text (not validated).
   * @throws TypeError when `text` is not a string.
   */
  constructor(text: string) {
    if (typeof text !== 'string') throw new TypeError(`JsonText expects a string, got ${typeof text}`);
    this.text = text;
    Object.freeze(this);
  }

  /** True for a {@link JsonText}, also one made by another copy of this package. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /**
   * The JSON text of a {@link Value}, exact: `bigint` as bare digits, nested `JsonText` verbatim, `Date` and
   * `Timestamp` as ISO strings, bytes as base64, non-finite numbers as `null`.
   */
  static from(value: Value): JsonText {
    return new JsonText(stringifyJsonExact(value));
  }

  /**
   * The value of the text: objects, arrays, strings, booleans, `null`; integers outside ±(2^53 − 1) as `bigint`,
   * other numbers as JS numbers (`1.50` → `1.5`: keep the `JsonText` where the digits matter). Keys such as
   * `__proto__` are own data properties.
   * @throws SyntaxError when the text is not valid JSON.
   */
  parse(): Value {
    return parseJsonExact(this.text);
  }

  /**
   * What `JSON.stringify` writes for this value: the parsed value, with every number written with its original
   * digits where the runtime has `JSON.rawJSON` and parse source access (Node 21+); on Node 20 numbers beyond
   * double precision round here. Codecs and sinks never go through `toJSON`: they write {@link JsonText.text}.
   * @throws SyntaxError when the text is not valid JSON.
   */
  toJSON(): unknown {
    if (rawJSON) {
      return JSON.parse(this.text, (_key, value, context?: { source?: string }) =>
        typeof value === 'number' && context?.source !== undefined ? rawJSON(context.source) : value,
      );
    }
    return JSON.parse(this.text);
  }

  /** The text. */
  toString(): string {
    return this.text;
  }

  /** Same text (byte for byte; `{"a":1}` and `{"a": 1}` differ). */
  equals(other: unknown): boolean {
    return other instanceof JsonText && other.text === this.text;
  }

  /** Shown by `console.log` / `util.inspect`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `JsonText(${this.text.length > 200 ? `${this.text.slice(0, 200)}…` : this.text})`;
  }
}

Object.defineProperty(JsonText.prototype, BRAND, { value: true });

const MAYBE_BIG = /\d{16,}/;

/**
 * Parse JSON text without losing integers: an integer literal outside ±(2^53 − 1) becomes a `bigint`, every other
 * number a JS number (as `JSON.parse` would). Object keys such as `__proto__` stay own data properties.
 * Text without a run of 16+ digits takes the `JSON.parse` fast path.
 *
 * @example
 * ```ts
 * import { parseJsonExact } from '@nucleus/ingestion/postgres';
 * parseJsonExact('{"id": 9007199254740993}'); // { id: 9007199254740993n }
 * ```
 * @throws SyntaxError on malformed JSON.
 * @public
 */
export function parseJsonExact(text: string): Value {
  if (!MAYBE_BIG.test(text)) return JSON.parse(text) as Value;
  return new Parser(text).parseDocument();
}

/**
 * Serialize a {@link Value} as JSON: `bigint` as a bare integer literal (exact), {@link JsonText} as its text
 * (verbatim), `Date` and {@link Timestamp} as ISO strings, `Uint8Array` as a base64 string, non-finite numbers as
 * `null`, `undefined` object members dropped.
 * @example
 * ```ts
 * import { stringifyJsonExact } from '@nucleus/ingestion/postgres';
 * stringifyJsonExact({ id: 12345678901234567890n }); // '{"id":12345678901234567890}'
 * ```
 * @public
 */
export function stringifyJsonExact(value: Value | undefined): string {
  if (value !== null && typeof value === 'object' && !needsCustom(value, 0)) return JSON.stringify(value);
  return stringifyCustom(value);
}

/** True when `v` holds a bigint or bytes (which JSON.stringify cannot write the way we want), or is very deep. */
function needsCustom(v: Value, depth: number): boolean {
  if (depth > 64) return true;
  if (Array.isArray(v)) {
    for (const x of v)
      if (x !== null && (typeof x === 'bigint' || (typeof x === 'object' && needsCustom(x, depth + 1)))) return true;
    return false;
  }
  if (v instanceof Uint8Array || v instanceof JsonText) return true;
  if (v instanceof Date || v instanceof Timestamp) return false;
  for (const k in v as Record<string, Value>) {
    const x = (v as Record<string, Value>)[k];
    if (x !== null && (typeof x === 'bigint' || (typeof x === 'object' && needsCustom(x, depth + 1)))) return true;
  }
  return false;
}

function stringifyCustom(value: Value | undefined): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    default:
      break;
  }
  if (value instanceof JsonText) return value.text;
  if (value instanceof Date || value instanceof Timestamp) return JSON.stringify(value.toISOString());
  if (value instanceof Uint8Array)
    return JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'));
  if (Array.isArray(value)) return `[${value.map((v) => stringifyCustom(v)).join(',')}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${stringifyCustom(v)}`);
  }
  return `{${parts.join(',')}}`;
}

const LITERALS: Array<[string, Value]> = [
  ['true', true],
  ['false', false],
  ['null', null],
];

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  parseDocument(): Value {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) this.fail();
    return v;
  }

  fail(): never {
    throw new SyntaxError(`Unexpected token in JSON at position ${this.i}`);
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.i++;
      else break;
    }
  }

  value(): Value {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    for (const [word, v] of LITERALS) {
      if (c === word[0] && this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.number();
  }

  object(): Value {
    this.i++;
    const out: Record<string, Value> = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    while (true) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail();
      const key = this.string();
      this.ws();
      if (this.s[this.i++] !== ':') this.fail();
      const v = this.value();
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const d = this.s[this.i++];
      if (d === '}') return out;
      if (d !== ',') this.fail();
    }
  }

  array(): Value {
    this.i++;
    const out: Value[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    while (true) {
      out.push(this.value());
      this.ws();
      const d = this.s[this.i++];
      if (d === ']') return out;
      if (d !== ',') this.fail();
    }
  }

  string(): string {
    const start = this.i;
    let j = start + 1;
    const s = this.s;
    while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
    if (j >= s.length) this.fail();
    this.i = j + 1;
    return JSON.parse(s.slice(start, j + 1)) as string;
  }

  number(): Value {
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.fail();
    this.i += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  }
}
