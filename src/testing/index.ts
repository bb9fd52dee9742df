/**
 * `@nucleus/ingestion/testing` — a memory source and sink, fault wrappers and a test context, for testing pipelines
 * in any test runner (or none): this subpath imports no test framework. The contract suites (`describe*`) that
 * connector authors run in vitest are in `@nucleus/ingestion/testing/vitest`.
 *
 * @example
 * ```ts
 * import { MemoryKvStore, MemoryStagingProvider, runUnit } from '@nucleus/ingestion';
 * import { MemorySink, MemorySource } from '@nucleus/ingestion/testing';
 *
 * const sink = new MemorySink();
 * await runUnit({
 *   source: new MemorySource({ units: { users: { rows: [{ id: 1 }] } } }),
 *   sink,
 *   staging: new MemoryStagingProvider(),
 *   kv: new MemoryKvStore(),
 *   unit: { endpointId: 'memory', unitId: 'users' },
 * });
 * console.log(sink.rows('users')); // [{ id: 1 }]
 * ```
 * @packageDocumentation
 */
export { testContext } from './context.js';
export { type FaultError, type FaultOptions, type Faulty, failAtBatch, failOnce, slow } from './faults.js';
export { MemorySink, type MemorySinkImport, memorySinkDescriptor } from './memory-sink.js';
export {
  type MemoryCheckpoint,
  MemorySource,
  type MemorySourceOptions,
  type MemorySourceUnit,
  memorySourceConfig,
  memorySourceDescriptor,
} from './memory-source.js';
