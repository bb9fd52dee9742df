// A process that runs one unit with memory staging and a persistent FileKvStore, and whose sink fails: the run is
// left pending in phase `importing` (some rows may be in the sink) with its staged rows in this process's memory.
import { FileKvStore } from '../../../../src/fs/index.js';
import { MemoryStagingProvider, runUnit } from '../../../../src/index.js';
import { MemorySink, MemorySource } from '../../../../src/testing/index.js';

const [kvPath] = process.argv.slice(2);
const rows = Array.from({ length: 20 }, (_, i) => ({ id: i + 1 }));
const inner = new MemorySink();
const sink = {
  descriptor: inner.descriptor,
  async import(): Promise<never> {
    throw new Error('the target went away for good');
  },
};
const err = await runUnit({
  source: new MemorySource({ units: { items: { rows, cursorField: 'id' } } }),
  sink,
  staging: new MemoryStagingProvider(),
  kv: new FileKvStore({ path: kvPath! }),
  unit: { endpointId: 'mem', unitId: 'items' },
}).then(
  () => undefined,
  (e: { code?: string }) => e,
);
process.stdout.write(`${JSON.stringify({ code: err?.code ?? null })}\n`);
