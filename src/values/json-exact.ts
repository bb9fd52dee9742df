import type { Value } from '../contracts/values.js';
import { JsonText } from './json-text.js';
import { Timestamp } from './timestamp.js';

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
