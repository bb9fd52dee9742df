import type { Value } from '../contracts/values.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A row value as plain JSON for files people and tools read (object-store sink NDJSON/CSV, CLI previews): `bigint` →
 * number when it is a safe integer, else a decimal string; `Date` → ISO-8601 (ms); `Timestamp` → ISO-8601 (µs, `Z`
 * when zoned, `infinity`/`-infinity`); bytes → base64; non-finite numbers → strings. A {@link JsonText} is kept as
 * is: serialize the result with `stringifyJsonExact` to splice its text in verbatim (`JSON.stringify` parses it).
 * Keys stay data (`__proto__` too).
 * @internal
 */
export function plainJson(v: Value | undefined): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v !== 'object') return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Timestamp) return v.toISOString();
  if (v instanceof JsonText) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return v.map(plainJson);
  const out: Record<string, unknown> = {};
  for (const [k, child] of Object.entries(v)) {
    Object.defineProperty(out, k, { value: plainJson(child), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
