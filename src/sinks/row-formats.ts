import type { RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { stringifyJsonExact } from '../values/json-exact.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import { plainJson } from './plain-json.js';

const encoder = new TextEncoder();

/**
 * Rows as NDJSON of plain JSON, one chunk per batch: `Date` and `Timestamp` → ISO-8601, `bigint` → number when safe
 * else a decimal string, bytes → base64, `JsonText` → its JSON spliced in verbatim (`1.50` stays `1.50`).
 */
export async function* formatNdjson(batches: AsyncIterable<Row[]>): AsyncGenerator<Uint8Array> {
  for await (const batch of batches) {
    let text = '';
    for (const row of batch) text += `${stringifyJsonExact(plainJson(row) as never)}\n`;
    if (text) yield encoder.encode(text);
  }
}

/**
 * Rows as RFC 4180 CSV with a header line, one chunk per batch. Columns come from `schema`, else from the keys of
 * the first batch; a later row with a column not in the header is refused (`row_rejected`) rather than dropped.
 * `null` is an empty field; the empty string is `""`; nested values are JSON text.
 */
export async function* formatCsv(batches: AsyncIterable<Row[]>, schema?: RecordSchema): AsyncGenerator<Uint8Array> {
  let columns: string[] | undefined = schema?.fields.map((f) => f.name);
  let known = new Set(columns);
  let rowNumber = 0;
  let headerWritten = false;
  for await (const batch of batches) {
    if (!columns) {
      const seen = new Set<string>();
      for (const row of batch) for (const k of Object.keys(row)) seen.add(k);
      if (seen.size === 0) continue;
      columns = [...seen];
      known = seen;
    }
    let text = headerWritten ? '' : `${columns.map(csvField).join(',')}\n`;
    headerWritten = true;
    for (const row of batch) {
      for (const k of Object.keys(row)) {
        if (!known.has(k)) {
          throw new IngestError('row_rejected', `CSV row ${rowNumber} has column "${k}" that the header lacks`, {
            details: { row: rowNumber, column: k },
          });
        }
      }
      text += `${columns.map((c) => (Object.hasOwn(row, c) ? csvValue(row[c]!) : '')).join(',')}\n`;
      rowNumber++;
    }
    yield encoder.encode(text);
  }
  if (!headerWritten && columns && columns.length > 0) yield encoder.encode(`${columns.map(csvField).join(',')}\n`);
}

function csvValue(v: Value): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v === '' ? '""' : csvField(v);
  if (v instanceof JsonText) return csvField(v.text);
  if (v instanceof Timestamp) return csvField(v.toISOString());
  if (typeof v === 'object' && !(v instanceof Date) && !(v instanceof Uint8Array))
    return csvField(stringifyJsonExact(plainJson(v) as never));
  return csvField(String(plainJson(v)));
}

function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
