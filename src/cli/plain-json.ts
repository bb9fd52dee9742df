import type { Value } from '../contracts/values.js';

/**
 * A row value as plain, readable JSON: `bigint` → number when safe, else a decimal string; `Date` → ISO-8601;
 * bytes → base64; non-finite numbers → strings. Keys stay data (`__proto__` included).
 * @internal
 */
export function toPlainJson(v: Value | undefined): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'object': {
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      if (Array.isArray(v)) return v.map(toPlainJson);
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) {
        Object.defineProperty(out, k, {
          value: toPlainJson((v as Record<string, Value>)[k]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      return v;
  }
}
