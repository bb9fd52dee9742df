/**
 * Quick start: rows from a source, staged in memory, imported into a sink, checkpoint in a KvStore.
 * Run: npx tsx examples/quickstart.ts
 */
import { MemoryKvStore, MemoryStagingProvider, runUnit } from '@nucleus/ingestion';
import { MemorySink, MemorySource } from '@nucleus/ingestion/testing';

const orders = Array.from({ length: 1000 }, (_, i) => ({
  id: BigInt(i + 1),
  customer: `customer-${i % 37}`,
  amount: ((i * 7919) % 10_000) / 100,
  created_at: new Date(Date.UTC(2026, 0, 1) + i * 60_000),
}));

const source = new MemorySource({ units: { orders: { rows: orders, cursorField: 'id', batchSize: 250 } } });
const sink = new MemorySink();
const staging = new MemoryStagingProvider();
const kv = new MemoryKvStore();
const unit = { vendor: 'memory', endpointId: 'shop', unitId: 'orders' };

const first = await runUnit({
  source,
  sink,
  staging,
  kv,
  unit,
  policy: { sliceMaxRows: 400 },
  onEvent: (e) => {
    if (e.type === 'slice.staged') console.log(`staged slice ${e.slice}: ${e.rows} rows`);
  },
});
console.log(
  `first run ${first.runId}: ${first.stats.rowsImported} rows, checkpoint ${JSON.stringify(first.newCheckpoint)}`,
);

// New rows arrive upstream; the next incremental run moves only those.
source.setRows('orders', [...orders, { id: 1001n, customer: 'customer-new', amount: 12.5, created_at: new Date() }]);
const second = await runUnit({ source, sink, staging, kv, unit });
console.log(`second run: ${second.stats.rowsImported} new row(s); the sink holds ${sink.rows('orders').length}`);
