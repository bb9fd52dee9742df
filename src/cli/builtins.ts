import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { FileSystemObjectStore } from '../fs/file-system-object-store.js';
import { HttpJsonSource, httpJsonDescriptor } from '../http/http-json-source.js';
import { JetStreamSource, jetStreamDescriptor } from '../nats/jetstream-source.js';
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
 * The registry of `nucleus-ingest`: sources `sample`, `memory`, `http.json`, `nats.jetstream`; sink `object-store` (NDJSON, CSV or
 * Parquet files under `root`); and, when the optional peers `pg`, `pg-copy-streams` and `kysely` are installed,
 * source `postgres` and sinks `postgres` / `cdm.jdbc`; with `mysql2` and `kysely`, source and sink `mysql`.
 * @internal
 */
export async function createCliRegistry(): Promise<EndpointRegistry> {
  const registry = new EndpointRegistry();
  registry.register(sampleSourceDescriptor, (config) => new SampleSource(config));
  registry.register(memorySourceDescriptor, (config) => new MemorySource(config));
  registry.register(httpJsonDescriptor, (config) => new HttpJsonSource(config));
  // loads @nats-io/* on first use: without them a run fails with dependency_missing
  registry.register(jetStreamDescriptor, (config) => new JetStreamSource(config));
  registry.register(
    fileObjectStoreSinkDescriptor,
    ({ root, ...config }) => new ObjectStoreSink({ ...config, store: new FileSystemObjectStore({ root }) }),
  );
  const pgModule = await importOptional(() => import('../postgres/index.js'));
  if (pgModule) {
    registry.register(pgModule.postgresSourceDescriptor, (config) => new pgModule.PostgresSource(config));
    registry.register(pgModule.postgresSinkDescriptor, (config) => new pgModule.PostgresSink(config));
    registry.register(pgModule.cdmJdbcSinkDescriptor, (config) => new pgModule.CdmJdbcSink(config));
    registry.register(pgModule.postgresCdcSourceDescriptor, (config) => new pgModule.PostgresCdcSource(config));
  }
  const mysqlModule = await importOptional(() => import('../mysql/index.js'));
  if (mysqlModule) {
    registry.register(mysqlModule.mySqlSourceDescriptor, (config) => new mysqlModule.MySqlSource(config));
    registry.register(mysqlModule.mySqlSinkDescriptor, (config) => new mysqlModule.MySqlSink(config));
  }
  return registry;
}

/** Load a subpath whose optional peer dependencies may be missing (then `undefined`). @internal */
export async function importOptional<T>(load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}
