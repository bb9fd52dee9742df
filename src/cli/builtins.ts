import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { FileSystemObjectStore } from '../fs/file-system-object-store.js';
import { HttpJsonSource, httpJsonDescriptor } from '../http/http-json-source.js';
import { EndpointRegistry } from '../registry/endpoint-registry.js';
import {
  ObjectStoreSink,
  type ObjectStoreSinkConfig,
  objectStoreSinkConfigSchema,
  objectStoreSinkDescriptor,
} from '../sinks/object-store-sink.js';
import { MemorySource, memorySourceDescriptor } from '../testing/memory-source.js';
import { SampleSource, sampleSourceDescriptor } from './sample-source.js';

/** Config of the CLI's `object-store` sink: the sink's own config plus the directory its files go to. @internal */
export type FileObjectStoreSinkConfig = ObjectStoreSinkConfig & { root: string };

const fileSinkSchema = (objectStoreSinkConfigSchema as unknown as z.ZodObject<any>).extend({
  root: z.string({ error: 'Expected `root` to be the directory that receives the files' }).min(1),
}) as unknown as z.ZodType<FileObjectStoreSinkConfig>;

/** The `object-store` sink on a local directory (`root`). @internal */
export const fileObjectStoreSinkDescriptor: EndpointDescriptor<FileObjectStoreSinkConfig> = {
  ...(objectStoreSinkDescriptor as unknown as EndpointDescriptor<FileObjectStoreSinkConfig>),
  title: `${objectStoreSinkDescriptor.title} — local directory`,
  config: fileSinkSchema,
};

/**
 * The registry of `nucleus-ingest`: endpoints that need no optional peer dependency —
 * sources `sample`, `memory`, `http.json`; sink `object-store` (NDJSON, CSV or Parquet files under `root`).
 * @internal
 */
export function createCliRegistry(): EndpointRegistry {
  const registry = new EndpointRegistry();
  registry.register(sampleSourceDescriptor, (config) => new SampleSource(config));
  registry.register(memorySourceDescriptor, (config) => new MemorySource(config));
  registry.register(httpJsonDescriptor, (config) => new HttpJsonSource(config));
  registry.register(
    fileObjectStoreSinkDescriptor,
    ({ root, ...config }) => new ObjectStoreSink({ ...config, store: new FileSystemObjectStore({ root }) }),
  );
  return registry;
}
