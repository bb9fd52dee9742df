import type { Row, Value } from '../contracts/values.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

/**
 * Deep copy of a row: `Date`, `bigint`, `Uint8Array`, nested values, and keys such as `__proto__` kept as own data.
 * `Timestamp` and `JsonText` are immutable and shared, not copied.
 * @internal
 */
export function cloneRow(row: Row): Row {
  return cloneValue(row) as Row;
}

function cloneValue(v: Value): Value {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Timestamp || v instanceof JsonText) return v;
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(cloneValue);
  const out: Record<string, Value> = {};
  for (const k of Object.keys(v)) {
    const child = cloneValue((v as Record<string, Value>)[k]);
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: child, enumerable: true, writable: true, configurable: true });
    else out[k] = child;
  }
  return out;
}

/**
 * A cheap, deterministic estimate of a row's encoded size in bytes (close to its NDJSON length).
 * Used to cut slices by bytes and to refuse oversized rows before they are staged.
 * @internal
 */
export function estimateRowBytes(row: Row): number {
  return estimateValue(row, 0);
}

function estimateValue(v: Value, depth: number): number {
  switch (typeof v) {
    case 'string':
      return v.length + 2;
    case 'number':
      return 8;
    case 'boolean':
      return 5;
    case 'bigint':
      return 24;
    case 'object': {
      if (v === null) return 4;
      if (v instanceof Date || v instanceof Timestamp) return 30;
      if (v instanceof JsonText) return v.text.length + 8;
      if (v instanceof Uint8Array) return Math.ceil(v.byteLength * 1.34) + 16;
      if (depth > 64) return 16;
      let n = 2;
      if (Array.isArray(v)) {
        for (const x of v) n += estimateValue(x, depth + 1) + 1;
        return n;
      }
      for (const k in v) {
        if (Object.hasOwn(v, k)) n += k.length + 4 + estimateValue((v as Record<string, Value>)[k], depth + 1);
      }
      return n;
    }
    default:
      return 4;
  }
}

/**
 * Visit every row of a sync or async iterable; arrays and sync iterables are walked without an await per row.
 * @internal
 */
export async function forEachRow(batch: Iterable<Row> | AsyncIterable<Row>, fn: (row: Row) => void): Promise<void> {
  if (Symbol.iterator in (batch as object)) {
    for (const row of batch as Iterable<Row>) fn(row);
    return;
  }
  for await (const row of batch as AsyncIterable<Row>) fn(row);
}
