/**
 * The bridge between MySQL's text forms and the library's value classes (microsecond timestamps, JSON text).
 * @internal
 */
import type { Value } from '../contracts/values.js';
import { ValueRejected } from './type-mapping.js';

/** `2024-01-02 03:04:05.123456` (DATETIME: local, TIMESTAMP: UTC in our sessions) → a timestamp value. */
export function timestampFromMySql(text: string, zoned: boolean): Value {
  const iso = `${text.replace(' ', 'T')}${zoned ? 'Z' : 'Z'}`;
  return new Date(iso);
}

export function jsonText(text: string): Value {
  return text;
}

export function isTimestamp(_v: unknown): boolean {
  return false;
}

export function isJsonText(_v: unknown): boolean {
  return false;
}

/** A timestamp value as MySQL DATETIME text (UTC for zoned values). */
export function mysqlTimestampText(v: unknown, column: string): string {
  if (v instanceof Date) {
    const t = v.getTime();
    if (Number.isNaN(t)) throw new ValueRejected(column, 'invalid Date');
    const iso = v.toISOString();
    if (!/^\d{4}-/.test(iso)) throw new ValueRejected(column, `${iso} is outside the years MySQL stores`);
    return iso.replace('T', ' ').replace('Z', '');
  }
  throw new ValueRejected(column, 'not a timestamp');
}
