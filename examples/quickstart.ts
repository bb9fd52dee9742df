/**
 * Quick start: rows from a source, staged in memory, imported into a sink, checkpoint in a KvStore.
 * Run: npx tsx examples/quickstart.ts
 */
import { MemoryKvStore, MemoryStagingProvider, runUnit } from '@nucleus/ingestion';
import { MemorySink, MemorySource } from '@nucleus/ingestion/testing';

const orders = Array.from({ length: 1000 }, (_, i) => ({
  id: i + 1,
  customer: `customer-${i % 37}`,
  amount: ((i * 7919) % 10_000) / 100,
  created_at: new Date(Date.UTC(2026, 0, 1) + i * 60_000),
}));

const source = new MemorySource({ units: { orders: { rows: orders, cursorColumns: ['id'], batchSize: 250 } } });
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
console.log(first.stats.rowsImported, first.newCheckpoint); // 1000 { cursor: 1000 }

// New rows arrive upstream; the next incremental run moves only those.
source.setRows('orders', [...orders, { id: 1001, customer: 'customer-new', amount: 12.5, created_at: new Date() }]);
const second = await runUnit({ source, sink, staging, kv, unit });
console.log(second.stats.rowsImported, sink.rows('orders').length); // 1 1001
