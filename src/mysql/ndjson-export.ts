import { canonicalInteger } from '../codecs/canonical-integer.js';
import { isFastTimestampText } from '../codecs/timestamp-text.js';
import { compileRowPlan, fieldJsonText, keyText } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import {
  type CastField,
  columnDecoder,
  isUnsignedBigint,
  type MySqlColumnType,
  timestampOfText,
} from './type-mapping.js';

/*
 * NDJSON staging from MySQL without row objects (docs/decisions/0008-transcoded-row-paths.md). The row path stages a
 * row as `encodeRow(row, plan)` of the values `columnDecoder` reads; here each column's wire text becomes that value's
 * JSON text (`fieldJsonText`) as it is read, and the line is joined in the order `encodeRow` walks the row object's
 * keys. Three kinds skip the value object where its text is known from the wire text — BIGINT digits into an `int64`
 * column (`"…"`), DATETIME / TIMESTAMP text of 1700–2250 into a `timestamp` column (ISO with six fraction digits, `Z`
 * for TIMESTAMP) and JSON (`{"$j":…}`); every other value goes through the row path's own decoder and
 * `fieldJsonText`, so the staged bytes are the row path's, byte for byte.
 */

/** Reads one column's wire value straight into the JSON text `encodeRow` writes for it. */
export type JsonFieldReader = (f: CastField) => string;

/**
 * The JSON text readers of `columns` (in select order, parallel to `columns`) and how to join a row of their texts into the NDJSON line
 * (without newline) `encodeRow(row, compileRowPlan(schema))` writes for the row the source's row path builds.
 * @internal
 */
export function ndjsonRowWriter(
  columns: ReadonlyArray<MySqlColumnType & { name: string }>,
  schema: RecordSchema,
  zeroDates: 'null' | 'error',
  onZeroDate: (column: string, text: string) => void,
): { readers: JsonFieldReader[]; line: (texts: readonly unknown[]) => string } {
  const plan = compileRowPlan(schema);
  const readers = columns.map((c) => jsonReader(c, plan?.kindOf.get(c.name), zeroDates, onZeroDate));
  // the order `for … in` walks a row object built in select order: integer-like keys first, ascending
  const probe: Record<string, number> = {};
  for (let i = 0; i < columns.length; i++)
    Object.defineProperty(probe, columns[i].name, { value: i, enumerable: true, writable: true, configurable: true });
  const order = Object.keys(probe).map((k) => probe[k]);
  const keys = order.map((i) => keyText(columns[i].name));
  const line = (texts: readonly unknown[]) => {
    let out = '{';
    for (let k = 0; k < order.length; k++) {
      if (k > 0) out += ',';
      out += keys[k];
      out += texts[order[k]] as string;
    }
    return `${out}}`;
  };
  return { readers, line };
}

function jsonReader(
  c: MySqlColumnType & { name: string },
  kind: 'int64' | 'timestamp' | 'binary' | undefined,
  zeroDates: 'null' | 'error',
  onZeroDate: (column: string, text: string) => void,
): JsonFieldReader {
  if (c.kind === 'bigint' && !isUnsignedBigint(c) && kind === 'int64')
    return (f) => {
      const s = f.string();
      if (s === null) return 'null';
      return canonicalInteger(s, 20) ? `"${s}"` : fieldJsonText(BigInt(s), kind);
    };
  if ((c.kind === 'datetime' || c.kind === 'timestamp') && kind === 'timestamp') {
    const value = timestampOfText(c, zeroDates, onZeroDate);
    const z = c.kind === 'timestamp' ? 'Z"' : '"';
    return (f) => {
      const s = f.string();
      if (s === null) return 'null';
      if (!isFastTimestampText(s, '') || s.charCodeAt(10) !== 32) return fieldJsonText(value(s), kind);
      // isoText of the Timestamp: `T`, six fraction digits
      const n = s.length;
      const head = `"${s.slice(0, 10)}T${s.slice(11, 19)}`;
      return n === 26 ? `${head}${s.slice(19)}${z}` : `${head}.${n > 19 ? s.slice(20).padEnd(6, '0') : '000000'}${z}`;
    };
  }
  if (c.kind === 'json' && kind === undefined)
    return (f) => {
      const s = f.string('utf8');
      return s === null ? 'null' : `{"$j":${JSON.stringify(s)}}`;
    };
  const decode = columnDecoder(c, zeroDates, onZeroDate);
  return (f) => fieldJsonText(decode(f), kind);
}
