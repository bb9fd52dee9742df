import type { Value } from '../contracts/values.js';
import { parseJsonExact, stringifyJsonExact } from './json-exact.js';

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
