import type { ImportSlice } from '../contracts/sink-endpoint.js';
import type { FieldType, RecordSchema, Value } from '../contracts/values.js';
import { Timestamp } from '../values/timestamp.js';

/**
 * A schema for rows staged without one: the fields of the first batch of the first non-empty slice, in order of
 * appearance, typed by their first non-null value (`string` when only nulls), all nullable. A wall-clock
 * {@link Timestamp} gets `logical.withTimeZone: false`, so no session time zone shifts it.
 * @internal
 */
export async function inferSchema(slices: ImportSlice[]): Promise<RecordSchema | undefined> {
  for (const s of slices) {
    for await (const batch of s.reader.iterBatches(1000)) {
      if (!batch.length) continue;
      const types = new Map<string, FieldType | undefined>();
      const local = new Set<string>();
      for (const row of batch) {
        for (const [k, v] of Object.entries(row)) {
          if (v !== null && v !== undefined && !types.get(k)) {
            types.set(k, typeOfValue(v));
            if (v instanceof Timestamp && !v.zoned) local.add(k);
          } else if (!types.has(k)) types.set(k, undefined);
        }
      }
      return {
        fields: [...types].map(([name, type]) => ({
          name,
          type: type ?? 'string',
          nullable: true,
          ...(local.has(name) ? { logical: { withTimeZone: false } } : {}),
        })),
      };
    }
  }
  return undefined;
}

function typeOfValue(v: Value): FieldType {
  if (typeof v === 'bigint') return 'int64';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (v instanceof Date || v instanceof Timestamp) return 'timestamp';
  if (v instanceof Uint8Array) return 'binary';
  return 'json';
}
