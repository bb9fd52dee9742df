import {
  checkpointKey,
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  type Row,
  type RunUnitOptions,
  type StagingProvider,
} from '../../../src/index.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

/** Rows `{ id: from…to (bigint), name }`. */
export const rowsOf = (from: number, to: number): Row[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ id: BigInt(from + i), name: `user ${from + i}` }));
/** The ids of rows, sorted. */
export const ids = (rows: Row[]) => rows.map((r) => Number(r.id)).sort((a, b) => a - b);
/** a…b */
export const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/**
 * A unit `users` of a MemorySource (incremental by `id`, batches of 40) into a MemorySink, slices of 100 rows,
 * no retries, events collected.
 */
export function memoryRun(opts: { staging?: StagingProvider; rows?: Row[]; planSlices?: number } = {}) {
  const source = new MemorySource({
    units: {
      users: {
        rows: opts.rows ?? rowsOf(1, 250),
        cursorField: 'id',
        batchSize: 40,
        ...(opts.planSlices ? { planSlices: opts.planSlices } : {}),
      },
    },
  });
  const sink = new MemorySink();
  const staging = opts.staging ?? new MemoryStagingProvider();
  const kv = new MemoryKvStore();
  const events: IngestionEvent[] = [];
  const base = {
    source,
    sink,
    staging,
    kv,
    unit: { endpointId: 'mem', unitId: 'users', vendor: 'memory' },
    policy: { sliceMaxRows: 100, retry: { maxAttempts: 1 } },
    onEvent: (e: IngestionEvent) => events.push(e),
  } satisfies RunUnitOptions;
  const key = checkpointKey({ vendor: 'memory', endpointId: 'mem', unitId: 'users' });
  return { source, sink, staging, kv, events, base, key };
}
