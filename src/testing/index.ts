/**
 * `@nucleus/ingestion/testing` — a memory source and sink, fault wrappers, and the contract suites
 * connector authors run in their own vitest. Imports `vitest` (a peer of this subpath only).
 * @packageDocumentation
 */
export { testContext } from './context.js';
export {
  type DescribeSinkOptions,
  type DescribeSourceOptions,
  describeSinkEndpoint,
  describeSourceEndpoint,
} from './describe-endpoints.js';
export { type DescribeKvStoreOptions, describeKvStore } from './describe-kv-store.js';
export { type DescribeObjectStoreOptions, describeObjectStore } from './describe-object-store.js';
export {
  type DescribeStagingProviderOptions,
  describeStagingProvider,
  fidelityRows,
} from './describe-staging-provider.js';
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
