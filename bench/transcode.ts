/**
 * `npm run bench -- transcode [--rows N] [--runs R] [--unicode] [--no-write]` (default 1,000,000 rows, best of 3 runs): the four
 * transcoders between PostgreSQL COPY text and staged bytes (docs/decisions/0008-transcoded-row-paths.md), each
 * against the row path it replaces, in the same process on the same bytes — no database, no disk, no hashing:
 *
 * - export, COPY text → NDJSON: row path = every field through the column's type parser (`parse(text)` after COPY
 *   unescaping, as `pg` gives `read`), one row object per line, `ndjsonCodec().encode`; transcoder = `copyToNdjson`.
 *   The two outputs must be byte-identical (sha256 compared), or the benchmark fails.
 * - export, COPY text → Arrow: row path = the same rows through `arrowCodec().encode`; transcoder = `copyToArrow`.
 *   Both must decode to the same number of rows.
 * - import, NDJSON → COPY text: row path = `ndjsonCodec().decode` + `CsvEncoder.encodeTextRow` per row; transcoder =
 *   `ndjsonToCopyText`. Both must write one line per row (the escaping of `"` may differ; what COPY loads is the
 *   same, tested in test/unit/codecs/ndjson-transcode.test.ts).
 * - import, Arrow → COPY text: row path = `arrowCodec().decode` + `encodeTextRow`; transcoder = `arrowToCopyText`.
 *
 * Rows: the e2e table (id bigint, name text, amount numeric(12,2), created_at timestamptz with microseconds, tags
 * jsonb) as PostgreSQL prints it, generated here; `--unicode` names them `nämé "q" <n>` instead of `name-<n>` (non-ASCII
 * text and quotes, which a transcoder may handle apart from plain ASCII). Ratio = row path seconds / transcoder seconds (higher is better).
 * Writes the table to docs/performance.md (section `transcode`) unless `--no-write`.
 */
import { createHash } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { arrowCodec } from '../src/arrow/index.js';
import { ndjsonCodec, type RecordCodec, type RecordSchema, type Row } from '../src/index.js';
import { arrowToCopyText } from '../src/postgres/arrow-to-csv.js';
import { type CopyColumn, CsvEncoder } from '../src/postgres/copy-encoding.js';
import { unescapeCopy } from '../src/postgres/copy-text.js';
import { copyToArrow } from '../src/postgres/copy-to-arrow.js';
import { copyToNdjson } from '../src/postgres/copy-to-ndjson.js';
import { ndjsonToCopyText } from '../src/postgres/ndjson-to-copy.js';
import type { CopyTextColumn, CopyTranscoderFactory, StagedToCsv } from '../src/postgres/transcode.js';
import { createTypeParsers } from '../src/postgres/type-mapping.js';
import { writePerformanceSection } from './_report.js';

const BATCH = 10_000;
const CHUNK = 64 * 1024;
const PIECE = 256 * 1024;

/** The schema `PostgresSource` reports for the e2e table. */
const SCHEMA: RecordSchema = {
  fields: [
    { name: 'id', type: 'int64', nullable: false, native: { dialect: 'postgres', type: 'bigint' } },
    { name: 'name', type: 'string', nullable: true, native: { dialect: 'postgres', type: 'text' } },
    {
      name: 'amount',
      type: 'decimal',
      nullable: true,
      logical: { precision: 12, scale: 2 },
      native: { dialect: 'postgres', type: 'numeric(12,2)' },
    },
    {
      name: 'created_at',
      type: 'timestamp',
      nullable: true,
      logical: { withTimeZone: true },
      native: { dialect: 'postgres', type: 'timestamp with time zone' },
    },
    { name: 'tags', type: 'json', nullable: true, native: { dialect: 'postgres', type: 'jsonb' } },
  ],
  primaryKey: ['id'],
};
const OIDS = { id: 20, name: 25, amount: 1700, created_at: 1184, tags: 3802 } as const;
const TYPES = { id: 'int8', name: 'text', amount: 'numeric', created_at: 'timestamptz', tags: 'jsonb' } as const;
const CATEGORIES = { id: 'N', name: 'S', amount: 'N', created_at: 'D', tags: 'U' } as const;
const TARGET: CopyColumn[] = SCHEMA.fields.map((f) => ({ name: f.name, kind: f.name === 'tags' ? 'json' : 'scalar' }));
const ORIGIN = { slice: 0, table: '"bench"."dst"' };

function columns(): CopyTextColumn[] {
  const parsers = createTypeParsers();
  return SCHEMA.fields.map((f) => {
    const name = f.name as keyof typeof OIDS;
    return {
      name,
      typname: TYPES[name],
      typcategory: CATEGORIES[name],
      parse: parsers.getTypeParser(OIDS[name], 'text'),
    };
  });
}

/** COPY text of `n` rows of the e2e table as PostgreSQL prints it (UTC, ISO, fraction without trailing zeros). */
function copyText(n: number, unicode: boolean): Buffer {
  const base = Date.UTC(2024, 0, 1);
  const parts: string[] = [];
  for (let i = 1; i <= n; i++) {
    const micros = i * 1001;
    const d = new Date(base + Math.floor(micros / 1000));
    const frac = String((micros % 1_000_000) + 1_000_000)
      .slice(1)
      .replace(/0+$/, '');
    const ts = `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}${frac ? `.${frac}` : ''}+00`;
    const amount = ((i % 1_000_000) / 100).toFixed(2);
    parts.push(
      `${i}\t${unicode ? 'nämé "q" ' : 'name-'}${i}\t${amount}\t${ts}\t{"k": ${i % 10}, "tags": ["a", ${i % 7}, true]}\n`,
    );
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/** The row path's rows of COPY text, in batches: unescape, the column's parser, a row object per line. */
function* rowsOf(text: Buffer, cols: CopyTextColumn[]): Generator<Row[]> {
  let batch: Row[] = [];
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf(10, start);
    const fields = text.toString('utf8', start, end).split('\t');
    const row: Row = {};
    for (let c = 0; c < cols.length; c++) {
      const f = fields[c];
      row[cols[c].name] = f === '\\N' ? null : cols[c].parse(f.includes('\\') ? unescapeCopy(f, 0) : f);
    }
    batch.push(row);
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
    start = end + 1;
  }
  if (batch.length) yield batch;
}

async function* asyncOf<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

function* chunks(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += CHUNK) yield bytes.subarray(at, at + CHUNK);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

async function exportRowPath(text: Buffer, codec: RecordCodec): Promise<Buffer> {
  return collect(codec.encode(asyncOf(rowsOf(text, columns())), SCHEMA));
}

async function exportTranscoded(text: Buffer, factory: CopyTranscoderFactory, batchRows?: number): Promise<Buffer> {
  const tr = await factory(columns(), SCHEMA, batchRows ? { batchRows } : undefined);
  const out: Uint8Array[] = [];
  for (const c of chunks(text)) out.push(...tr.push(c));
  out.push(...tr.end());
  return Buffer.concat(out);
}

async function importRowPath(staged: Buffer, codec: RecordCodec): Promise<Buffer> {
  const encoder = new CsvEncoder(TARGET, ORIGIN);
  const out: Buffer[] = [];
  for await (const rows of codec.decode(asyncOf(chunks(staged)), SCHEMA)) {
    let s = '';
    for (const r of rows) s += encoder.encodeTextRow(r);
    out.push(Buffer.from(s, 'utf8'));
  }
  return Buffer.concat(out);
}

async function importTranscoded(staged: Buffer, toCopy: StagedToCsv): Promise<Buffer> {
  return collect(
    toCopy(asyncOf(chunks(staged)), { schema: SCHEMA, columns: TARGET, origin: ORIGIN, pieceBytes: PIECE }),
  );
}

/** Best wall time of `runs` runs of `fn` (ms) and its last result. */
async function best<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number; out: T }> {
  let ms = Number.POSITIVE_INFINITY;
  let out: T | undefined;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    out = await fn();
    ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms, out: out as T };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const lines = (b: Buffer) => {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
};
async function arrowRows(bytes: Buffer): Promise<number> {
  let n = 0;
  for await (const rows of arrowCodec().decode(asyncOf([bytes]), SCHEMA)) n += rows.length;
  return n;
}

interface Line {
  path: string;
  rowMs: number;
  transMs: number;
  check: string;
}

/** Entry point of `npm run bench -- transcode`. */
export async function main(args: string[]): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const rows = arg('--rows', 1_000_000);
  const runs = arg('--runs', 3);
  const load0 = loadavg()[0];
  console.log(`transcode bench: ${rows.toLocaleString('en-US')} rows, best of ${runs}, load ${load0.toFixed(1)}`);
  const unicode = args.includes('--unicode');
  const text = copyText(rows, unicode);
  const results: Line[] = [];
  const ndjson = ndjsonCodec();
  const arrow = arrowCodec({ batchRows: BATCH });

  console.log('export: COPY text → NDJSON');
  const nRow = await best(runs, () => exportRowPath(text, ndjson));
  const nTr = await best(runs, () => exportTranscoded(text, copyToNdjson));
  if (sha(nRow.out) !== sha(nTr.out)) throw new Error('copyToNdjson wrote other bytes than the row path');
  results.push({ path: 'export: COPY text → NDJSON', rowMs: nRow.ms, transMs: nTr.ms, check: 'byte-identical' });

  console.log('export: COPY text → Arrow');
  const aRow = await best(runs, () => exportRowPath(text, arrow));
  const aTr = await best(runs, () => exportTranscoded(text, copyToArrow, BATCH));
  const [ra, ta] = [await arrowRows(aRow.out), await arrowRows(aTr.out)];
  if (ra !== rows || ta !== rows) throw new Error(`Arrow rows: row path ${ra}, transcoder ${ta}, expected ${rows}`);
  results.push({
    path: 'export: COPY text → Arrow',
    rowMs: aRow.ms,
    transMs: aTr.ms,
    check: `${rows.toLocaleString('en-US')} rows each`,
  });

  console.log('import: NDJSON → COPY text');
  const inRow = await best(runs, () => importRowPath(nTr.out, ndjson));
  const inTr = await best(runs, () => importTranscoded(nTr.out, ndjsonToCopyText));
  if (lines(inRow.out) !== rows || lines(inTr.out) !== rows) throw new Error('NDJSON import: a line per row expected');
  results.push({
    path: 'import: NDJSON → COPY text',
    rowMs: inRow.ms,
    transMs: inTr.ms,
    check: `${rows.toLocaleString('en-US')} lines each`,
  });

  console.log('import: Arrow → COPY text');
  const iaRow = await best(runs, () => importRowPath(aTr.out, arrow));
  const iaTr = await best(runs, () => importTranscoded(aTr.out, arrowToCopyText));
  if (lines(iaRow.out) !== rows || lines(iaTr.out) !== rows) throw new Error('Arrow import: a line per row expected');
  results.push({
    path: 'import: Arrow → COPY text',
    rowMs: iaRow.ms,
    transMs: iaTr.ms,
    check: `${rows.toLocaleString('en-US')} lines each`,
  });

  const load1 = loadavg()[0];
  const md = [
    '## Transcoders alone (`npm run bench -- transcode`)',
    '',
    `\`npm run bench -- transcode --rows ${rows}${unicode ? ' --unicode' : ''}\` — ${rows.toLocaleString('en-US')} rows of the e2e table as PostgreSQL's COPY text${unicode ? ' (names with `ä`, `é` and quotes)' : ''}`,
    `(${(text.length / 1048576).toFixed(1)} MiB), generated in the process; each path in memory, chunks of 64 KiB, best of ${runs} runs.`,
    'Row path = what the transcoder replaces (the type parsers, a row object per line, the codec; or the codec decode and',
    '`CsvEncoder.encodeTextRow`); ratio = row path seconds / transcoder seconds. No database, disk or hashing: the',
    "Node CPU per row of each conversion (the e2e section has the pipeline's figures).",
    `Measured ${new Date().toISOString().slice(0, 16)}Z on this machine (Node ${process.version}, ${cpus().length} cores);`,
    `1-minute load average **${load0.toFixed(1)} at the start and ${load1.toFixed(1)} at the end**.`,
    '',
    '| conversion | row path s | transcoder s | ns per row (transcoder) | ratio | outputs |',
    '|---|---:|---:|---:|---:|---|',
    ...results.map(
      (r) =>
        `| ${r.path} | ${(r.rowMs / 1000).toFixed(2)} | ${(r.transMs / 1000).toFixed(2)} | ${Math.round((r.transMs * 1e6) / rows)} | ${(r.rowMs / r.transMs).toFixed(1)}× | ${r.check} |`,
    ),
  ].join('\n');
  console.log(`\n${md}\n`);
  if (!args.includes('--no-write')) writePerformanceSection('transcode', md);
}
