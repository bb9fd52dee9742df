/**
 * A source and a sink written from scratch against the contracts, registered in an EndpointRegistry
 * and run with runUnit. Run: npx tsx examples/custom-connector.ts
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type EndpointDescriptor,
  EndpointRegistry,
  type ImportRequest,
  type ImportResult,
  IngestError,
  type IngestionContext,
  MemoryKvStore,
  MemoryStagingProvider,
  type ReadRequest,
  runUnit,
  type SinkEndpoint,
  type SourceBatch,
  type SourceEndpoint,
} from '@nucleus/ingestion';
import { z } from 'zod';

// --- a source: the Fibonacci numbers, incremental by index ---------------------------------------
const fibConfig = z.object({ count: z.number().int().positive().max(90) });
type FibCheckpoint = { index: number };

const fibDescriptor: EndpointDescriptor<z.infer<typeof fibConfig>> = {
  id: 'fibonacci',
  role: 'source',
  family: 'example',
  title: 'Fibonacci numbers',
  version: '1.0.0',
  capabilities: ['ingest.full', 'ingest.incremental'],
  config: fibConfig,
};

class FibonacciSource implements SourceEndpoint<FibCheckpoint> {
  readonly descriptor = fibDescriptor;
  constructor(private readonly config: z.infer<typeof fibConfig>) {}

  async *read(req: ReadRequest<FibCheckpoint>, ctx: IngestionContext): AsyncIterable<SourceBatch<FibCheckpoint>> {
    const start = req.mode === 'incremental' ? (req.checkpoint?.index ?? 0) : 0;
    let [a, b] = [0n, 1n];
    for (let i = 0; i < start; i++) [a, b] = [b, a + b];
    let rows = [];
    for (let i = start + 1; i <= this.config.count; i++) {
      if (ctx.signal.aborted) throw new IngestError('aborted', 'Fibonacci read aborted');
      rows.push({ index: i, value: a });
      [a, b] = [b, a + b];
      if (rows.length === 10) {
        yield { rows, checkpoint: { index: i } };
        rows = [];
      }
    }
    if (rows.length) yield { rows, checkpoint: { index: this.config.count } };
  }
}

// --- a sink: NDJSON lines in a file, idempotent per (runId, slice) through a ledger file ----------
const fileSinkConfig = z.object({ dir: z.string().min(1) });

const fileSinkDescriptor: EndpointDescriptor<z.infer<typeof fileSinkConfig>> = {
  id: 'ndjson-file',
  role: 'sink',
  family: 'example',
  title: 'NDJSON file',
  version: '1.0.0',
  capabilities: [],
  config: fileSinkConfig,
};

class NdjsonFileSink implements SinkEndpoint {
  readonly descriptor = fileSinkDescriptor;
  constructor(private readonly config: z.infer<typeof fileSinkConfig>) {}

  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    const ledgerPath = join(this.config.dir, 'ledger.txt');
    const ledger = new Set(readText(ledgerPath).split('\n').filter(Boolean));
    let rowsImported = 0;
    for (const slice of req.slices) {
      const id = `${ctx.runId}/${slice.index}`;
      if (ledger.has(id)) continue; // already committed by an earlier attempt
      let text = '';
      for await (const batch of slice.reader.iterBatches(500)) {
        for (const row of batch)
          text += `${JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
        rowsImported += batch.length;
      }
      await appendFile(join(this.config.dir, `${req.unitId}.ndjson`), text);
      await appendFile(ledgerPath, `${id}\n`);
    }
    return { rowsImported };
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

// --- wire them up --------------------------------------------------------------------------------
const registry = new EndpointRegistry()
  .register(fibDescriptor, (config) => new FibonacciSource(config))
  .register(fileSinkDescriptor, (config) => new NdjsonFileSink(config));

const dir = mkdtempSync(join(tmpdir(), 'custom-connector-'));
const source = await registry.createSource({ endpointId: 'fibonacci', config: { count: 42 } });
const sink = await registry.createSink({ endpointId: 'ndjson-file', config: { dir } });

const result = await runUnit({
  source,
  sink,
  staging: new MemoryStagingProvider(),
  kv: new MemoryKvStore(),
  unit: { vendor: 'example', endpointId: 'fibonacci', unitId: 'fib' },
});
console.log(`${result.stats.rowsImported} rows into ${join(dir, 'fib.ndjson')}; checkpoint`, result.newCheckpoint);
console.log(JSON.stringify(registry.templates()[0].configSchema));
