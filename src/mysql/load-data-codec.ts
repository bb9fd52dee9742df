import { newlineRowCounter } from '../codecs/newline-row-counter.js';
import { DEFAULT_MAX_TEXT_LINE_BYTES, decodeTextLines, parseTextRow, textFieldError } from '../codecs/text-lines.js';
import type { RecordCodec, RowCounter } from '../contracts/staging.js';
import type { FieldSchema, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import {
  isFloat4,
  type MySqlColumnType,
  type MySqlKind,
  sinkValue,
  ValueRejected,
  zeroDateSeen,
} from './type-mapping.js';
import { float4Text, jsonText, timestampFromMySql } from './values.js';

/*
 * MySQL's LOAD DATA text format, as `LOAD DATA … FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`
 * reads it (https://mariadb.com/kb/en/load-data-infile/): one row per line, fields separated by a tab, NULL written
 * `\N`, and inside a value NUL, newline, carriage return, tab and backslash written `\0 \n \r \t \\`. Binary values
 * are hex digits (the sink loads them through `UNHEX`), BIT values binary digits (through `CONV`). A raw 0x0A byte
 * always ends a row (UTF-8 never uses 0x0A inside a character), so rows are counted without decoding.
 */

/** Codec id of MySQL LOAD DATA text staging ({@link mySqlLoadDataCodec}). @public */
export const MYSQL_LOAD_DATA_CODEC_ID = 'mysql-tsv';

/**
 * MySQL `LOAD DATA` text as a staging codec (id `mysql-tsv`, extension `.mysqltsv`): the MySQL-to-MySQL
 * pass-through. With this codec, {@link MySqlSource} stages each planned slice as the text `LOAD DATA` reads — built
 * from the server's own text of every value, without a row object or a value conversion in between — and
 * {@link MySqlSink} streams a slice to `LOAD DATA LOCAL INFILE` unchanged. The staging stays durable, checksummed
 * (sha256, byte and row counts in the manifest; rows are counted as newlines) and resumable like any other codec.
 *
 * It is a complete {@link RecordCodec} too: rows from any source are encoded (in the schema's column order, values
 * written as the MySQL sink writes them), and any sink reads a `mysql-tsv` slice as rows typed like the MySQL source
 * types them (`Timestamp` for DATETIME/TIMESTAMP, `JsonText`, exact decimal strings, `bigint`, `Uint8Array`). A
 * schema is required in both directions (it gives the column order and types).
 *
 * @example
 * ```ts
 * import { ObjectStoreStagingProvider, runUnit } from '@nucleus/ingestion';
 * import { FileSystemObjectStore } from '@nucleus/ingestion/fs';
 * import { MySqlSink, MySqlSource, mySqlLoadDataCodec } from '@nucleus/ingestion/mysql';
 *
 * const staging = new ObjectStoreStagingProvider({
 *   store: new FileSystemObjectStore({ root: '/var/lib/ingestion' }),
 *   codec: mySqlLoadDataCodec(),
 * });
 * await runUnit({ source: new MySqlSource({ pool }), sink: new MySqlSink({ pool: target }), staging, kv,
 *   unit: { vendor: 'mysql', endpointId: 'shop', unitId: 'shop.orders' } });
 * ```
 * @throws IngestError `config_invalid` when encoding or decoding without a schema; encoding throws `row_rejected`
 * for a value MySQL cannot store (NaN, ±Infinity, ±infinity timestamps); decoding throws `staging_corrupt` for bytes
 * that are not LOAD DATA text of the schema's columns.
 * @public
 */
export function mySqlLoadDataCodec(): RecordCodec {
  return {
    id: MYSQL_LOAD_DATA_CODEC_ID,
    contentType: 'text/tab-separated-values; charset=utf-8',
    extension: '.mysqltsv',
    encode: encodeLoadData,
    decode: decodeLoadData,
    rowCounter: loadDataRowCounter,
    rowsAreLines: true,
  };
}

/** Counts LOAD DATA text rows: one per newline byte; `end()` throws when the bytes end inside a row. @internal */
export function loadDataRowCounter(): RowCounter {
  return newlineRowCounter('LOAD DATA');
}

/** How a staged field is written in LOAD DATA text: hex digits, binary digits, or text. @internal */
export type LoadDataEncoding = 'binary' | 'bit' | 'text';

/** The kind of value a staged field holds, from its schema (`native.type` for fields read from MySQL). @internal */
export interface FieldPlan {
  name: string;
  column: MySqlColumnType & { name: string };
  parse: (text: string) => Value;
}

interface FieldDetails {
  native?: { dialect?: string; type?: string };
  logical?: { withTimeZone?: boolean };
}

/** How a staged field's values are written: binary fields as hex, MySQL `BIT` fields as binary digits. @internal */
export function loadDataEncodingOf(f: FieldSchema): LoadDataEncoding {
  const d = f as FieldSchema & FieldDetails;
  if (f.type === 'binary') return 'binary';
  if (d.native?.dialect === 'mysql' && /^bit\b/i.test(d.native.type ?? '')) return 'bit';
  return 'text';
}

/** A float field whose values are float4s: MySQL `FLOAT`, PostgreSQL `real`. */
function isFloat4Field(f: FieldSchema): boolean {
  const n = f.native;
  return n?.dialect === 'mysql' ? /^float\b/i.test(n.type) : n?.dialect === 'postgres' && n.type === 'real';
}

function kindOf(f: FieldSchema): MySqlKind {
  const d = f as FieldSchema & FieldDetails;
  switch (f.type) {
    case 'int32':
      return 'int';
    case 'int64':
      return 'bigint';
    case 'float64':
      return 'float';
    case 'decimal':
      return 'decimal';
    case 'timestamp':
      return d.logical?.withTimeZone ? 'timestamp' : 'datetime';
    case 'json':
      return 'json';
    case 'binary':
      return 'binary';
    case 'date':
      return 'date';
    default:
      return loadDataEncodingOf(f) === 'bit' ? 'bit' : 'string';
  }
}

/**
 * Each staged field's column (its MySQL kind) and the parse of its unescaped text, in the schema's order: what the
 * row path makes of a `mysql-tsv` field, for transcoders that follow it.
 * @throws IngestError `config_invalid` without a schema (it gives the column order).
 * @internal
 */
export function loadDataFieldPlans(schema: RecordSchema | undefined, op: string): FieldPlan[] {
  if (!schema?.fields.length)
    throw new IngestError('config_invalid', `The mysql-tsv codec needs a schema to ${op} (it gives the column order)`);
  return schema.fields.map((f) => {
    const kind = kindOf(f);
    const dataType = kind === 'float' && !isFloat4Field(f) ? 'double' : kind;
    const column = { name: f.name, kind, dataType, columnType: dataType, unsigned: false };
    let parse: (text: string) => Value;
    switch (kind) {
      case 'int':
      case 'float':
        parse = Number;
        break;
      case 'bigint':
        parse = BigInt;
        break;
      case 'datetime':
      case 'timestamp': {
        const zoned = kind === 'timestamp';
        parse = (t) => timestampFromMySql(t, zoned);
        break;
      }
      case 'json':
        parse = jsonText;
        break;
      case 'binary':
        parse = (t) => {
          if (t.length % 2 || !/^[0-9a-fA-F]*$/.test(t)) throw new Error('not hex digits');
          return new Uint8Array(Buffer.from(t, 'hex'));
        };
        break;
      default:
        parse =
          f.type === 'boolean'
            ? (t) => {
                if (t === '1') return true;
                if (t === '0') return false;
                throw new Error(`${JSON.stringify(t)} is not a boolean (1 or 0)`);
              }
            : (t) => t;
    }
    return { name: f.name, column, parse };
  });
}

const TSV_ESCAPES: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };
const TSV_SPECIAL = /[\0\n\r\t\\]/;
const TSV_SPECIAL_G = /[\0\n\r\t\\]/g;

/** One text value escaped for a LOAD DATA field. @internal */
export function escapeLoadData(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(TSV_SPECIAL_G, (ch) => TSV_ESCAPES[ch]) : s;
}

const GATHER = 64 * 1024;

/** Rows → LOAD DATA text lines, values written as the MySQL sink's row path writes them. */
async function* encodeLoadData(batches: AsyncIterable<Row[]>, schema?: RecordSchema): AsyncGenerator<Uint8Array> {
  const plans = loadDataFieldPlans(schema, 'encode');
  let rowNo = 0;
  let out = '';
  for await (const batch of batches) {
    for (const row of batch) {
      rowNo++;
      let line = '';
      for (let i = 0; i < plans.length; i++) {
        const p = plans[i];
        let v: string | Uint8Array | null;
        try {
          v = sinkValue(row[p.name] as Value | undefined, p.column);
        } catch (err) {
          const why = err instanceof ValueRejected ? err.message : String(err);
          throw new IngestError('row_rejected', `Row ${rowNo} cannot be written as LOAD DATA text: ${why}`, {
            cause: err,
            details: { row: rowNo, column: p.name },
          });
        }
        if (i) line += '\t';
        if (v === null) line += '\\N';
        else if (v instanceof Uint8Array) line += Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
        else line += escapeLoadData(v);
      }
      out += `${line}\n`;
      if (out.length >= GATHER) {
        yield Buffer.from(out, 'utf8');
        out = '';
      }
    }
  }
  if (out) yield Buffer.from(out, 'utf8');
}

/**
 * LOAD DATA text → rows typed like the MySQL source types them. One batch per input chunk of whole lines.
 * @throws IngestError `staging_corrupt` for a line that is not LOAD DATA text of the schema's columns, or longer than
 * `maxLineBytes` (default 64 MiB).
 * @internal
 */
export async function* decodeLoadData(
  bytes: AsyncIterable<Uint8Array>,
  schema?: RecordSchema,
  maxLineBytes = DEFAULT_MAX_TEXT_LINE_BYTES,
): AsyncGenerator<Row[]> {
  yield* decodeTextLines(bytes, 'LOAD DATA', maxLineBytes, loadDataLineParser(loadDataFieldPlans(schema, 'decode')));
}

function unescapeField(raw: string, n: number, column: string): string {
  try {
    return unescapeLoadData(raw);
  } catch (err) {
    throw textFieldError('LOAD DATA', n, column, err);
  }
}

/**
 * The row of one LOAD DATA text line (without its newline; `n` its 1-based number), as {@link decodeLoadData} makes
 * it — for transcoders that send the lines they do not read as bytes through the row path.
 * @throws IngestError `staging_corrupt` for a line that is not LOAD DATA text of the fields.
 * @internal
 */
export function loadDataLineParser(plans: readonly FieldPlan[]): (line: string, n: number) => Row {
  return (line, n) => parseTextRow(line, n, 'LOAD DATA', plans, unescapeField);
}

const UNESCAPED: Record<string, string> = { '0': '\0', n: '\n', r: '\r', t: '\t', b: '\b', Z: '\x1a' };

/** Undo LOAD DATA escapes: `\0 \n \r \t \b \Z`, and `\c` is `c` for any other character. */
function unescapeLoadData(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = s[++i];
    if (next === undefined) throw new Error('the field ends with a lone backslash');
    out += UNESCAPED[next] ?? next;
  }
  return out;
}

/** A mysql2 `typeCast` field (the part used here). */
interface CastField {
  name: string;
  string(encoding?: string): string | null;
  buffer(): Buffer | null;
}

const ZERO_DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/**
 * Read one column straight into its LOAD DATA field text (escaped, `\N` for NULL) from the wire text or bytes — the
 * same text the source's row path parses, so both paths agree value for value. Zero dates follow `zeroDates`
 * (`'\N'` and `onZeroDate`, or `source_failed`).
 * @internal
 */
export function loadDataFieldReader(
  c: MySqlColumnType & { name: string },
  zeroDates: 'null' | 'error',
  onZeroDate: (column: string, text: string) => void,
): (f: CastField) => string {
  switch (c.kind) {
    case 'binary':
      return (f) => {
        const b = f.buffer();
        return b === null ? '\\N' : b.toString('hex');
      };
    case 'bit': {
      const n = c.bits ?? 1;
      return (f) => {
        const b = f.buffer();
        if (b === null) return '\\N';
        let bits = '';
        for (const byte of b) bits += byte.toString(2).padStart(8, '0');
        return bits.slice(bits.length - n).padStart(n, '0');
      };
    }
    case 'float':
      // FLOAT is selected as a DOUBLE (its exact value): staged as the float4's shortest round-trip text
      if (isFloat4(c))
        return (f) => {
          const s = f.string();
          return s === null ? '\\N' : float4Text(s);
        };
      return (f) => f.string() ?? '\\N';
    case 'int':
    case 'bigint':
    case 'decimal':
    case 'year':
    case 'time':
      // digits, signs, dots, colons: nothing to escape
      return (f) => f.string() ?? '\\N';
    case 'date':
    case 'datetime':
    case 'timestamp':
      return (f) => {
        const s = f.string();
        if (s === null) return '\\N';
        const m = ZERO_DATE.exec(s);
        if (m && (m[1] === '0000' || m[2] === '00' || m[3] === '00')) {
          zeroDateSeen(c.name, s, zeroDates, onZeroDate);
          return '\\N';
        }
        return s;
      };
    case 'json':
      return (f) => {
        const s = f.string('utf8');
        return s === null ? '\\N' : escapeLoadData(s);
      };
    default:
      return (f) => {
        const s = f.string();
        return s === null ? '\\N' : escapeLoadData(s);
      };
  }
}
