/**
 * Hostile-input worker, run under a small heap (`--max-old-space-size=256`) to show the process survives input
 * designed to exhaust memory. HOSTILE selects the case:
 *   big-row         a generator source yields a ~300 MB row (300 references to one 1 MB string) after 1000 small
 *                   rows; policy.maxRowBytes is 16 MiB → expect `row_rejected`.
 *   gzip-bomb-line  an `ndjson.gz` slice replaced (manifest forged to match) by gzip of 512 MB without a newline.
 *   gzip-bomb-rows  the same with 512 MB of tiny rows while the manifest promises 10 rows.
 * Prints `@@result {code, retryable, message, maxRssMb, ms}`; exit 0 when the run failed with an IngestError,
 * 1 when it succeeded or failed otherwise. FS_ROOT is the staging directory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import {
  exportUnit,
  IngestError,
  importUnit,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
} from '../../../src/index.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

const mode = process.env.HOSTILE ?? 'big-row';
const root = process.env.FS_ROOT ?? '/tmp/nucleus-hostile';
const started = Date.now();

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function* bigRowSource(): AsyncGenerator<Row> {
  for (let i = 0; i < 1000; i++) yield { id: i, v: `row ${i}` };
  const mb = 'x'.repeat(1024 * 1024);
  yield { id: 1000, parts: Array.from({ length: 300 }, () => mb) };
  for (let i = 1001; i < 1100; i++) yield { id: i, v: `row ${i}` };
}

async function bigRow(): Promise<void> {
  await runUnit({
    source: new MemorySource({ units: { big: { rows: () => bigRowSource(), batchSize: 100 } } }),
    sink: new MemorySink(),
    staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
    kv: new MemoryKvStore(),
    unit: { endpointId: 'hostile', unitId: 'big' },
    mode: 'full',
    policy: { maxRowBytes: 16 * 1024 * 1024, retry: { maxAttempts: 1 } },
  });
}

/** Gzip `total` bytes made of `piece` repeated, streaming (never in memory). */
async function writeBomb(file: string, piece: Buffer, total: number): Promise<void> {
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i += piece.length) piece.copy(block, i);
  async function* bytes() {
    for (let n = 0; n < total; n += block.length) yield block;
  }
  await pipeline(bytes(), createGzip({ level: 9 }), createWriteStream(file));
}

async function gzipBomb(kind: 'line' | 'rows'): Promise<void> {
  const staging = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }), codec: 'ndjson.gz' });
  const kv = new MemoryKvStore();
  const sink = new MemorySink();
  const unit = { endpointId: 'hostile', unitId: 'bomb' };
  const rows = Array.from({ length: 10 }, (_, i) => ({ id: i }));
  const exported = await exportUnit({
    source: new MemorySource({ units: { bomb: { rows } } }),
    staging,
    kv,
    unit,
    mode: 'full',
  });
  const runDir = join(root, exported.sessionRef.sessionId as string);
  const manifestFile = join(runDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  const slice = manifest.slices[0];
  const file = join(root, slice.key);
  await writeBomb(file, Buffer.from(kind === 'line' ? 'a' : '{}\n'), 512 * 1024 * 1024);
  // Forge the manifest so size and checksum match the bomb: only the content gives it away.
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  slice.bytes = statSync(file).size;
  slice.sha256 = hash.digest('hex');
  writeFileSync(manifestFile, JSON.stringify(manifest));
  say(`@@bomb ${slice.bytes}`);
  await importUnit({ sink, staging, kv, unit, policy: { retry: { maxAttempts: 1 } } });
}

async function main(): Promise<number> {
  try {
    if (mode === 'big-row') await bigRow();
    else if (mode === 'gzip-bomb-line') await gzipBomb('line');
    else if (mode === 'gzip-bomb-rows') await gzipBomb('rows');
    else throw new Error(`unknown HOSTILE=${mode}`);
    say(
      `@@result ${JSON.stringify({ ok: true, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ms: Date.now() - started })}`,
    );
    return 1;
  } catch (err) {
    const e = err as IngestError;
    say(
      `@@result ${JSON.stringify({ ok: false, ingest: IngestError.is(err), code: e.code ?? null, retryable: e.retryable ?? null, message: String(e.message).slice(0, 500), maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ms: Date.now() - started })}`,
    );
    return IngestError.is(err) ? 0 : 1;
  }
}

main().then((code) => process.exit(code));
