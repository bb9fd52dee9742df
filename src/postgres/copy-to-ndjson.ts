import { isFastTimestampText } from '../codecs/timestamp-text.js';
import { type Conversion, compileRowPlan, fieldJsonText, keyText } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { unescapeCopy } from './copy-text.js';
import { type CopyTextColumn, type CopyTranscoder, type CopyTranscoderFactory, canonicalInteger } from './transcode.js';
import { TEXT_PARSERS } from './type-mapping.js';

/*
 * COPY text → NDJSON, value by value (docs/decisions/0008-transcoded-row-paths.md). The row path stages a row as
 * `encodeRow(row, compileRowPlan(schema))` where `row[name] = parse(text)` for every column in order; this writes
 * the same line from the text without the row object: each column gets a writer chosen by its parser, and a writer
 * that cannot prove its text equal to the row path's (a value outside its fast form) writes `fieldJsonText(parse(text))`,
 * the row path's own function. The bytes are identical (tested on every PostgreSQL type).
 */

/** Unescaped COPY text of a non-null value → the JSON text `encodeRow` writes for `parse(text)`. */
type FieldWriter = (text: string) => string;

const NL = 0x0a;

/**
 * `YYYY-MM-DD HH:MM:SS[.f]` (+ suffix) in the fast range → ISO text with 6 fractional digits, as `isoText` writes the
 * Timestamp the parser makes of it (the date and time digits are kept; the fraction is padded with zeros).
 */
function isoOf(t: string, suffix: string, zoned: boolean): string | undefined {
  if (!isFastTimestampText(t, suffix)) return undefined;
  const end = t.length - suffix.length;
  const frac = end > 20 ? t.slice(20, end) : '';
  return `"${t.slice(0, 10)}T${t.slice(11, 19)}.${frac}${'000000'.slice(frac.length)}${zoned ? 'Z' : ''}"`;
}

function writerFor(col: CopyTextColumn, kind: Conversion | undefined): FieldWriter {
  const parse = col.parse;
  const generic: FieldWriter = (t) => fieldJsonText(parse(t), kind);
  const P = TEXT_PARSERS;
  if (kind === undefined) {
    switch (parse) {
      case P.identity:
        return (t) => JSON.stringify(t);
      case P.int:
        return (t) => (canonicalInteger(t, 11) ? t : generic(t));
      case P.bool:
        return (t) => (t === 't' ? 'true' : t === 'f' ? 'false' : generic(t));
      case P.json:
        return (t) => `{"$j":${JSON.stringify(t)}}`;
      default:
        return generic;
    }
  }
  if (kind === 'int64' && parse === P.bigint) return (t) => (canonicalInteger(t, 20) ? `"${t}"` : generic(t));
  if (kind === 'timestamp' && parse === P.timestamptz) return (t) => isoOf(t, '+00', true) ?? generic(t);
  if (kind === 'timestamp' && parse === P.timestamp) return (t) => isoOf(t, '', false) ?? generic(t);
  return generic;
}

class CopyToNdjson implements CopyTranscoder {
  readonly #writers: FieldWriter[];
  /** Column indices in the order `for…in` visits the row object's keys (integer-like names first). */
  readonly #order: number[];
  /** `{"name":` for the first key, `,"name":` for the others, in `#order`. */
  readonly #prefixes: string[];
  readonly #width: number;
  /** The fields of the current line (reused). */
  readonly #fields: string[];
  #carry: Buffer | undefined;
  #line = 0;

  constructor(columns: CopyTextColumn[], schema: RecordSchema) {
    const plan = compileRowPlan(schema);
    this.#width = columns.length;
    this.#fields = new Array(columns.length).fill('');
    this.#writers = columns.map((c) => writerFor(c, plan?.kindOf.get(c.name)));
    const probe: Record<string, number> = {};
    for (let i = 0; i < columns.length; i++) {
      Object.defineProperty(probe, columns[i].name, { value: i, enumerable: true, writable: true, configurable: true });
    }
    this.#order = Object.keys(probe).map((k) => probe[k]);
    this.#prefixes = this.#order.map((i, j) => `${j === 0 ? '{' : ','}${keyText(columns[i].name)}`);
  }

  push(chunk: Uint8Array): Uint8Array[] {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, buf]);
      this.#carry = undefined;
    }
    const last = buf.lastIndexOf(NL);
    if (last < 0) {
      if (buf.length) this.#carry = buf;
      return [];
    }
    if (last < buf.length - 1) this.#carry = Buffer.from(buf.subarray(last + 1));
    return [Buffer.from(this.#lines(buf.toString('utf8', 0, last)), 'utf8')];
  }

  end(): Uint8Array[] {
    if (this.#carry?.length) {
      throw new IngestError('source_failed', `COPY text ended inside row ${this.#line + 1} (no final newline)`, {
        details: { row: this.#line + 1 },
      });
    }
    return [];
  }

  /** The error of a COPY line whose field count is not the unit's. */
  #width_(fields: number): IngestError {
    return new IngestError(
      'source_failed',
      `COPY text row ${this.#line} has ${fields === this.#width + 1 ? 'more' : 'fewer'} fields than the unit's ${this.#width} columns`,
      { details: { row: this.#line, columns: this.#width } },
    );
  }

  /** NDJSON lines (each with its newline) of COPY text lines joined by newlines (no final one). */
  #lines(text: string): string {
    const writers = this.#writers;
    const order = this.#order;
    const prefixes = this.#prefixes;
    const width = this.#width;
    let out = '';
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      this.#line++;
      if (width === 0) {
        start = end + 1;
        out += '{}\n';
        continue;
      }
      const fields = this.#fields;
      let from = start;
      for (let i = 0; i < width - 1; i++) {
        const to = text.indexOf('\t', from);
        if (to < 0 || to > end) throw this.#width_(i + 1);
        fields[i] = text.slice(from, to);
        from = to + 1;
      }
      const extra = text.indexOf('\t', from);
      if (extra >= 0 && extra < end) throw this.#width_(width + 1);
      fields[width - 1] = text.slice(from, end);
      start = end + 1;
      for (let j = 0; j < order.length; j++) {
        const i = order[j];
        let f = fields[i];
        out += prefixes[j];
        if (f.includes('\\')) {
          if (f === '\\N') {
            out += 'null';
            continue;
          }
          f = unescapeCopy(f, this.#line);
        }
        out += writers[i](f);
      }
      out += '}\n';
    }
    return out;
  }
}

/** COPY text of a PostgreSQL source → the NDJSON lines the row path stages for the same rows, byte for byte. */
export const copyToNdjson: CopyTranscoderFactory = async (columns, schema) => new CopyToNdjson(columns, schema);
