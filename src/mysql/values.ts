/**
 * The bridge between MySQL's text forms and the library's exact value classes ({@link Timestamp}, {@link JsonText}).
 * @internal
 */
import type { Value } from '../contracts/values.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import { ValueRejected } from './type-mapping.js';

/**
 * `2024-01-02 03:04:05.123456` → a Timestamp: DATETIME is a local date-time (unzoned), TIMESTAMP an instant (our
 * sessions run with `time_zone = '+00:00'`, so its text is UTC).
 */
export function timestampFromMySql(text: string, zoned: boolean): Value {
  return Timestamp.parse(zoned ? `${text}Z` : text, { zoned });
}

export function jsonText(text: string): Value {
  return new JsonText(text) as unknown as Value;
}

export function isTimestamp(v: unknown): v is Timestamp {
  return v instanceof Timestamp;
}

export function isJsonText(v: unknown): v is JsonText {
  return v instanceof JsonText;
}

const ISO = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z?$/;

/**
 * A Timestamp or Date as MySQL DATETIME/TIMESTAMP text (`YYYY-MM-DD HH:MM:SS.ffffff`; zoned values in UTC).
 * ±infinity and years outside 0000–9999 are refused naming the column.
 */
export function mysqlTimestampText(v: unknown, column: string): string {
  let iso: string;
  if (v instanceof Timestamp) {
    if (!v.isFinite) throw new ValueRejected(column, `MySQL has no ${v.toISOString()} timestamp`);
    iso = v.toISOString();
  } else if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new ValueRejected(column, 'invalid Date');
    iso = v.toISOString();
  } else throw new ValueRejected(column, 'not a timestamp');
  const m = ISO.exec(iso);
  if (!m) throw new ValueRejected(column, `${iso} is outside the years MySQL stores`);
  return m[3] ? `${m[1]} ${m[2]}.${m[3]}` : `${m[1]} ${m[2]}`;
}
