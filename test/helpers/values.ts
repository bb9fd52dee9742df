import fc from 'fast-check';
import { JsonText, Timestamp } from '../../src/index.js';

/** Exact timestamps over PostgreSQL's whole range (4713 BC – 294276 AD), zoned or not, and ±infinity. */
export const timestampArb: fc.Arbitrary<Timestamp> = fc.oneof(
  fc
    .tuple(
      fc.oneof(
        fc.bigInt({ min: -210866803200000000n, max: 9224318015999999999n }),
        fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }),
      ),
      fc.boolean(),
    )
    .map(([us, zoned]) => Timestamp.fromEpochMicros(us, { zoned })),
  fc.tuple(fc.constantFrom<1 | -1>(1, -1), fc.boolean()).map(([sign, zoned]) => Timestamp.infinite(sign, { zoned })),
);

/** JSON text as a source writes it: spacing, 1.50, digits beyond double precision, unicode. */
export const jsonTextArb: fc.Arbitrary<JsonText> = fc.oneof(
  fc.json().map((t) => new JsonText(t)),
  fc
    .constantFrom(
      '1.50',
      '{"a": 1.00000000000000000001, "b": 12345678901234567890123}',
      '[ 1 ,\n 2 ]',
      '{"$t":"x","$j":1}',
      '"ü😀\u2028"',
      '{"z":1,"z":2}',
    )
    .map((t) => new JsonText(t)),
);

/** The class of every value, depth first (toEqual alone does not tell a Timestamp from a plain object). */
export function kinds(v: unknown, out: string[] = []): string[] {
  if (v === null || typeof v !== 'object') out.push(typeof v);
  else if (v instanceof Timestamp || v instanceof JsonText || v instanceof Date || v instanceof Uint8Array)
    out.push(`${v.constructor.name}:${String(v instanceof Uint8Array ? v.length : v)}`);
  else if (Array.isArray(v)) {
    out.push('array');
    for (const e of v) kinds(e, out);
  } else {
    out.push(`object:${Object.getPrototypeOf(v) === Object.prototype ? 'plain' : 'other'}`);
    // key order is not data (Arrow returns columns in schema order)
    for (const k of Object.keys(v).sort()) {
      out.push(`key:${k}`);
      kinds((v as Record<string, unknown>)[k], out);
    }
  }
  return out;
}
