/**
 * `npm run bench -- parquet [rows] [rowGroupSize]`: hyparquet-writer vs parquet-wasm writing `rows` rows (default 1M)
 * streamed in row groups, each library in its own child process so peak RSS is its own. Baseline: the same rows
 * as NDJSON (JSON.stringify per row) in a third child. Writes the figures to docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writePerformanceSection } from './_report.js';

type Lib = 'ndjson' | 'hyparquet-writer' | 'parquet-wasm';
interface Result {
  lib: Lib;
  rows: number;
  rowGroupSize: number;
  ms: number;
  bytes: number;
  maxChunk: number;
  peakRssMb: number;
  baseRssMb: number;
}

const COLUMNS = 'id int64, name string, amount float64, created_at timestamp, active boolean, category string';

function* rowGroups(total: number, size: number): Generator<Array<Record<string, unknown>>> {
  const categories = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  for (let start = 0; start < total; start += size) {
    const n = Math.min(size, total - start);
    const rows = new Array(n);
    for (let i = 0; i < n; i++) {
      const id = start + i;
      rows[i] = {
        id: BigInt(id),
        name: `customer-${id}`,
        amount: (id % 10_000) / 100,
        created_at: new Date(1_700_000_000_000 + id * 1000),
        active: id % 3 !== 0,
        category: categories[id % 5],
      };
    }
    yield rows;
  }
}

async function* hyparquetBytes(total: number, size: number): AsyncGenerator<Uint8Array> {
  const { encodeParquet } = await import('../src/parquet/index.js');
  yield* encodeParquet(rowGroups(total, size) as Iterable<any>, {
    rowGroupSize: size,
    schema: {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'name', type: 'string', nullable: false },
        { name: 'amount', type: 'float64', nullable: false },
        { name: 'created_at', type: 'timestamp', nullable: false },
        { name: 'active', type: 'boolean', nullable: false },
        { name: 'category', type: 'string', nullable: false },
      ],
    },
  });
}

async function* parquetWasmBytes(total: number, size: number): AsyncGenerator<Uint8Array> {
  const arrow = await import('apache-arrow');
  const pw = await import('parquet-wasm');
  const groups = rowGroups(total, size);
  const batches = new ReadableStream({
    pull(controller) {
      const next = groups.next();
      if (next.done) return controller.close();
      const rows = next.value;
      const table = new arrow.Table({
        id: arrow.makeVector(BigInt64Array.from(rows, (r) => r.id as bigint)),
        name: arrow.vectorFromArray(
          rows.map((r) => r.name as string),
          new arrow.Utf8(),
        ),
        amount: arrow.makeVector(Float64Array.from(rows, (r) => r.amount as number)),
        created_at: arrow.vectorFromArray(
          rows.map((r) => r.created_at as Date),
          new arrow.TimestampMillisecond(),
        ),
        active: arrow.vectorFromArray(
          rows.map((r) => r.active as boolean),
          new arrow.Bool(),
        ),
        category: arrow.vectorFromArray(
          rows.map((r) => r.category as string),
          new arrow.Utf8(),
        ),
      });
      const wasmTable = pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
      for (const batch of wasmTable.recordBatches()) controller.enqueue(batch);
    },
  });
  const props = new pw.WriterPropertiesBuilder().setCompression(pw.Compression.SNAPPY).setMaxRowGroupSize(size).build();
  const out = await pw.transformParquetStream(batches, props);
  const reader = out.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value as Uint8Array;
  }
}

async function* ndjsonBytes(total: number, size: number): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  for (const rows of rowGroups(total, size)) {
    let text = '';
    for (const r of rows) text += `${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
    yield enc.encode(text);
  }
}

async function child(lib: Lib, rows: number, rowGroupSize: number): Promise<void> {
  const baseRssMb = process.memoryUsage().rss / 2 ** 20;
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const gen = lib === 'hyparquet-writer' ? hyparquetBytes : lib === 'parquet-wasm' ? parquetWasmBytes : ndjsonBytes;
  const t0 = performance.now();
  let bytes = 0;
  let maxChunk = 0;
  // The consumer only counts bytes: what an ObjectStore.put body sees, without the store's own cost.
  for await (const chunk of gen(rows, rowGroupSize)) {
    bytes += chunk.byteLength;
    maxChunk = Math.max(maxChunk, chunk.byteLength);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const ms = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024);
  const result: Result = { lib, rows, rowGroupSize, ms, bytes, maxChunk, peakRssMb: peak / 2 ** 20, baseRssMb };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(lib: Lib, rows: number, rowGroupSize: number): Result {
  const here = fileURLToPath(import.meta.url);
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', here, '--child', lib, String(rows), String(rowGroupSize)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

/** Entry point of `npm run bench -- parquet [rows] [rowGroupSize]`. */
export async function main(args: string[]): Promise<void> {
  const rows = Number(args[0] ?? 1_000_000);
  const rowGroupSize = Number(args[1] ?? 10_000);
  const load = loadavg()[0]!;
  const results: Result[] = [];
  for (const lib of ['ndjson', 'hyparquet-writer', 'parquet-wasm'] as Lib[]) {
    const r = runChild(lib, rows, rowGroupSize);
    console.log(
      `${lib.padEnd(17)} ${(rows / (r.ms / 1000)).toFixed(0).padStart(9)} rows/s  ${(r.bytes / 2 ** 20).toFixed(1)} MiB out  peak RSS ${r.peakRssMb.toFixed(0)} MiB`,
    );
    results.push(r);
  }
  // Memory and speed vs row-group size: both writers at 50k, the chosen one at 100k too.
  const sweep = (
    [
      ['hyparquet-writer', 50_000],
      ['parquet-wasm', 50_000],
      ['hyparquet-writer', 100_000],
    ] as Array<[Lib, number]>
  )
    .filter(([, s]) => s !== rowGroupSize)
    .map(([lib, s]) => runChild(lib, rows, s));
  const base = results[0]!;
  const line = (r: Result) =>
    `| ${r.lib} | ${r.rowGroupSize.toLocaleString('en-US')} | ${(r.ms / 1000).toFixed(2)} | ${Math.round(r.rows / (r.ms / 1000)).toLocaleString('en-US')} | ${(base.ms / r.ms).toFixed(2)}× | ${(r.bytes / 2 ** 20).toFixed(1)} | ${(r.maxChunk / 2 ** 20).toFixed(1)} | ${r.peakRssMb.toFixed(0)} | ${(r.peakRssMb - r.baseRssMb).toFixed(0)} |`;
  const md = [
    '## Parquet writers',
    '',
    `\`npm run bench -- parquet ${rows} ${rowGroupSize}\` — ${rows.toLocaleString('en-US')} rows (${COLUMNS}), streamed in row groups to a`,
    'byte-counting consumer (what an `ObjectStore.put` body sees); each writer in its own child process so the peak RSS',
    'is its own. Baseline: the same rows as NDJSON (`JSON.stringify` per row). Snappy compression for both Parquet writers.',
    `Measured ${new Date().toISOString().slice(0, 10)} on this machine (Node ${process.version}, ${cpus().length} CPUs, 1-minute load average ${load.toFixed(1)} at the start — absolute rows/s move with the load of the machine; the ratios between writers measured in one run are what to compare).`,
    '',
    '| writer | rows / row group | seconds | rows/s | speed vs NDJSON | output MiB | largest chunk MiB | peak RSS MiB | RSS growth MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(line),
    ...sweep.map(line),
    '',
    'Decision and reasoning: [docs/decisions/0002-parquet-writer.md](decisions/0002-parquet-writer.md).',
  ].join('\n');
  writePerformanceSection('parquet', md);
  console.log(md);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] as Lib, Number(process.argv[4]), Number(process.argv[5]));
}
