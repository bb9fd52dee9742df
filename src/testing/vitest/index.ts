/**
 * `@nucleus/ingestion/testing/vitest` — the contract suites connector authors run in their own vitest:
 * {@link describeSourceEndpoint}, {@link describeSinkEndpoint}, {@link describeStagingProvider},
 * {@link describeKvStore} and {@link describeObjectStore}. Imports `vitest` (an optional peer, needed by this subpath
 * only); the memory source and sink and the fault wrappers are in `@nucleus/ingestion/testing`, which needs no test
 * runner.
 *
 * @example
 * ```ts
 * import { MemoryKvStore } from '@nucleus/ingestion';
 * import { describeKvStore } from '@nucleus/ingestion/testing/vitest';
 *
 * describeKvStore('MemoryKvStore', () => new MemoryKvStore());
 * ```
 * @packageDocumentation
 */
export {
  type DescribeSinkOptions,
  type DescribeSourceOptions,
  describeSinkEndpoint,
  describeSourceEndpoint,
} from '../describe-endpoints.js';
export { type DescribeKvStoreOptions, describeKvStore } from '../describe-kv-store.js';
export { type DescribeObjectStoreOptions, describeObjectStore } from '../describe-object-store.js';
export {
  type DescribeStagingProviderOptions,
  describeStagingProvider,
  fidelityRows,
} from '../describe-staging-provider.js';
