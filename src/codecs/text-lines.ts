import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { LineSizeCheck } from '../util/line-size-check.js';

/** The line cap of the COPY text and LOAD DATA text decoders: `policy.maxRowBytes`' default. @internal */
export const DEFAULT_MAX_TEXT_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Newline-terminated text of one row per line (COPY text, LOAD DATA text) → batches of rows, one batch per input
 * chunk of whole lines; `parse(line, n)` makes the row of 1-based line `n`. A line split across chunks is kept as a
 * list of pieces and joined once, so a long line costs time linear in its length.
 * @throws IngestError `staging_corrupt` for a line over `maxLineBytes` (`details.line`), or bytes that end inside a row.
 * @internal
 */
export async function* decodeTextLines(
  bytes: AsyncIterable<Uint8Array>,
  format: string,
  maxLineBytes: number,
  parse: (line: string, n: number) => Row,
): AsyncGenerator<Row[]> {
  const size = new LineSizeCheck(
    maxLineBytes,
    (row) =>
      new IngestError(
        'staging_corrupt',
        `${format} text line ${row + 1} is longer than the line cap of ${maxLineBytes} bytes`,
        {
          details: { line: row + 1, maxLineBytes },
        },
      ),
  );
  let carry: Buffer[] = [];
  let lineNo = 0;
  for await (const chunk of bytes) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size.check(buf);
    const last = buf.lastIndexOf(0x0a);
    if (last < 0) {
      carry.push(buf);
      continue;
    }
    const head = carry.length ? Buffer.concat([...carry, buf.subarray(0, last + 1)]) : buf.subarray(0, last + 1);
    carry = last + 1 < buf.length ? [Buffer.from(buf.subarray(last + 1))] : [];
    const text = head.toString('utf8');
    const rows: Row[] = [];
    for (let start = 0, end = text.indexOf('\n'); end >= 0; start = end + 1, end = text.indexOf('\n', start))
      rows.push(parse(text.slice(start, end), ++lineNo));
    if (rows.length) yield rows;
  }
  if (carry.length) {
    throw new IngestError('staging_corrupt', `${format} text ends inside row ${lineNo + 1} (no final newline)`, {
      details: { line: lineNo + 1 },
    });
  }
}

/** How a column of tab-separated text becomes a value (its text already unescaped). @internal */
export interface TextColumn {
  name: string;
  parse(text: string): Value;
}

/** The `staging_corrupt` error for a field of line `lineNo` that does not decode. @internal */
export function textFieldError(format: string, lineNo: number, column: string, err: unknown): IngestError {
  return new IngestError(
    'staging_corrupt',
    `${format} text line ${lineNo}, column ${JSON.stringify(column)}: ${(err as Error).message}`,
    { cause: err, details: { line: lineNo, column } },
  );
}

/**
 * One line of tab-separated text with `\N` for NULL (COPY text, LOAD DATA text) → a row of `cols`. `unescapeField`
 * undoes the format's backslash escapes of a field that has one (its errors pass through). A `__proto__` column is
 * kept as data, never as a prototype.
 * @throws IngestError `staging_corrupt` naming the line (and the column) when the line does not fit `cols`.
 * @internal
 */
export function parseTextRow(
  line: string,
  lineNo: number,
  format: string,
  cols: readonly TextColumn[],
  unescapeField: (raw: string, lineNo: number, column: string) => string,
): Row {
  const fields = line.split('\t');
  if (fields.length !== cols.length) {
    throw new IngestError(
      'staging_corrupt',
      `${format} text line ${lineNo} has ${fields.length} columns, the schema has ${cols.length}`,
      { details: { line: lineNo } },
    );
  }
  const row: Row = {};
  for (let i = 0; i < cols.length; i++) {
    const raw = fields[i];
    let v: Value = null;
    if (raw !== '\\N') {
      const text = raw.includes('\\') ? unescapeField(raw, lineNo, cols[i].name) : raw;
      try {
        v = cols[i].parse(text);
      } catch (err) {
        throw textFieldError(format, lineNo, cols[i].name, err);
      }
    }
    if (cols[i].name === '__proto__')
      Object.defineProperty(row, cols[i].name, { value: v, enumerable: true, writable: true, configurable: true });
    else row[cols[i].name] = v;
  }
  return row;
}
