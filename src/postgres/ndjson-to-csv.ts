import { DEFAULT_MAX_LINE_BYTES, decodeLine, forEachLine, ndjsonBlocks } from '../codecs/ndjson-codec.js';
import { fastMicros } from '../codecs/timestamp-text.js';
import { type Conversion, compileRowPlan, type RowPlan } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';
import type { StagedToCsv } from './transcode.js';

/*
 * NDJSON → COPY CSV, value by value (docs/decisions/0008-transcoded-row-paths.md). The row path imports a line as
 * `CsvEncoder.encodeRow(decodeRow(line, plan))`; this writes the same CSV from the parsed JSON without reviving values
 * (no bigint, Timestamp or JsonText objects). Any value outside the forms proven equal below — a tag other than
 * `$j`, a non-canonical integer, a timestamp outside the fast range, bytes, a NUL, a `json` target column — sends the
 * whole line through the row path's own functions, so the output and the errors are the row path's.
 */

/** `0` or `-?[1-9][0-9]*` of at most 20 characters: what `BigInt(t).toString()` gives back. */
function canonicalInteger(t: string): boolean {
  const n = t.length;
  if (n === 0 || n > 20) return false;
  let i = t.charCodeAt(0) === 45 ? 1 : 0;
  if (i === n) return false;
  if (t.charCodeAt(i) === 48) return n === 1;
  for (; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * ISO text of a staged Timestamp (`YYYY-MM-DDTHH:MM:SS[.f]`, `Z` when zoned) in the fast range → the text `pgText`
 * writes for the Timestamp the row path revives from it (fraction without trailing zeros, `+00` when zoned).
 */
function pgTextOfIso(p: string): string | undefined {
  const zoned = p.charCodeAt(p.length - 1) === 90; // 'Z'
  if (fastMicros(p, zoned ? 'Z' : '') === undefined) return undefined;
  const end = p.length - (zoned ? 1 : 0);
  let fracEnd = end;
  while (fracEnd > 20 && p.charCodeAt(fracEnd - 1) === 48) fracEnd--;
  const frac = fracEnd > 20 ? `.${p.slice(20, fracEnd)}` : '';
  return `${p.slice(0, 10)} ${p.slice(11, 19)}${frac}${zoned ? '+00' : ''}`;
}

/** The text of a `{"$j": "…"}` tag (a JsonText), or `undefined` for any other object. */
function jsonTextOf(p: object): string | undefined {
  if (Array.isArray(p)) return undefined;
  let n = 0;
  for (const k in p) {
    if (n++ > 0 || k !== '$j') return undefined;
  }
  const text = (p as { $j?: unknown }).$j;
  return n === 1 && typeof text === 'string' ? text : undefined;
}

class NdjsonToCsv {
  readonly #columns: CopyColumn[];
  readonly #kinds: (Conversion | undefined)[];
  readonly #inherited: boolean[];
  readonly #plan: RowPlan | undefined;
  readonly #encoder: CsvEncoder;
  rows = 0;

  constructor(schema: RecordSchema, columns: CopyColumn[], origin: CopyOrigin) {
    this.#plan = compileRowPlan(schema);
    this.#columns = columns;
    this.#kinds = columns.map((c) => this.#plan?.kindOf.get(c.name));
    this.#inherited = columns.map((c) => c.name in Object.prototype);
    this.#encoder = new CsvEncoder(columns, origin);
  }

  /** The CSV line (with its newline) of NDJSON line `lineNo`. */
  line(line: string, lineNo: number): string {
    this.rows++;
    return this.#fast(line) ?? this.#slow(line, lineNo);
  }

  /** The row path: decode the line, encode the row (its errors name the line, the row and the column). */
  #slow(line: string, lineNo: number): string {
    this.#encoder.rows = this.rows - 1;
    return this.#encoder.encodeRow(decodeLine(line, this.#plan, lineNo));
  }

  #fast(line: string): string | undefined {
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
    const row = o as Record<string, unknown>;
    // the row path revives tags only in lines holding `{"$` (see value-encoding.ts)
    const tagged = line.includes('{"$');
    const cols = this.#columns;
    const kinds = this.#kinds;
    const inherited = this.#inherited;
    let out = '';
    for (let i = 0; i < cols.length; i++) {
      if (i > 0) out += ',';
      const c = cols[i];
      if (inherited[i] && !Object.hasOwn(row, c.name)) continue;
      const p = row[c.name];
      if (p === null || p === undefined) continue;
      const kind = kinds[i];
      let s: string;
      if (kind === undefined) {
        switch (typeof p) {
          case 'string':
            s = c.kind === 'json' ? JSON.stringify(p) : p;
            break;
          case 'number':
            if (c.kind === 'json') return undefined;
            out += Object.is(p, -0) ? '-0' : String(p);
            continue;
          case 'boolean':
            out += c.kind === 'json' ? String(p) : p ? 't' : 'f';
            continue;
          case 'object': {
            const text = tagged ? jsonTextOf(p) : undefined;
            if (text === undefined) return undefined;
            s = text;
            break;
          }
          default:
            return undefined;
        }
      } else if (kind === 'int64') {
        if (typeof p !== 'string' || !canonicalInteger(p)) return undefined;
        out += p;
        continue;
      } else if (kind === 'timestamp') {
        if (typeof p !== 'string' || c.kind === 'json') return undefined;
        const t = pgTextOfIso(p);
        if (t === undefined) return undefined;
        out += t;
        continue;
      } else return undefined;
      if (s.includes('\u0000')) return undefined;
      out += s.includes('"') ? `"${s.replace(/"/g, '""')}"` : `"${s}"`;
    }
    return `${out}\n`;
  }
}

/** A staged NDJSON slice → the COPY CSV the row path sends for its rows, in pieces of about `pieceBytes`. */
export const ndjsonToCsv: StagedToCsv = async function* (bytes, opts) {
  const t = new NdjsonToCsv(opts.schema, opts.columns, opts.origin);
  let pending = '';
  let rows = 0;
  let lineNo = 0;
  for await (const text of ndjsonBlocks(bytes, DEFAULT_MAX_LINE_BYTES)) {
    const pieces: string[] = [];
    const counts: number[] = [];
    lineNo = forEachLine(text, lineNo, DEFAULT_MAX_LINE_BYTES, (line, n) => {
      pending += t.line(line, n);
      rows++;
      if (pending.length >= opts.pieceBytes) {
        pieces.push(pending);
        counts.push(rows);
        pending = '';
        rows = 0;
      }
    });
    for (let i = 0; i < pieces.length; i++) {
      opts.onRows?.(counts[i]);
      yield Buffer.from(pieces[i], 'utf8');
    }
  }
  if (pending.length > 0) {
    opts.onRows?.(rows);
    yield Buffer.from(pending, 'utf8');
  }
};
