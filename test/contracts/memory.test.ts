import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKvStore } from '../../src/fs/index.js';
import { MemoryKvStore, MemoryStagingProvider } from '../../src/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import {
  describeKvStore,
  describeSinkEndpoint,
  describeSourceEndpoint,
  describeStagingProvider,
} from '../../src/testing/vitest/index.js';

describeKvStore('memory', () => new MemoryKvStore());

const dir = mkdtempSync(join(tmpdir(), 'nucleus-filekv-'));
describeKvStore('file', () => new FileKvStore({ path: join(dir, 'kv-store.json') }), {
  teardown: () => rmSync(dir, { recursive: true, force: true }),
});

describeStagingProvider('memory', () => new MemoryStagingProvider());

const rows = Array.from({ length: 95 }, (_, i) => ({ id: i + 1, name: `n${i}` }));
describeSourceEndpoint('memory', () => new MemorySource({ units: { u: { rows, cursorField: 'id', batchSize: 10 } } }), {
  unitId: 'u',
  expectedRows: 95,
});
describeSourceEndpoint(
  'memory (planned)',
  () => new MemorySource({ units: { u: { rows, cursorField: 'id', batchSize: 10, planSlices: 4 } } }),
  {
    unitId: 'u',
    expectedRows: 95,
  },
);

const sink = new MemorySink();
describeSinkEndpoint('memory', () => sink, { unitId: 'contract', readBack: async (u) => sink.rows(u) });
