import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import { FileSystemObjectStore } from '../fs/file-system-object-store.js';
import { HttpJsonSource, httpJsonDescriptor } from '../http/http-json-source.js';
import { JetStreamSource, jetStreamDescriptor } from '../nats/jetstream-source.js';
import { EndpointRegistry, type EndpointRequest } from '../registry/endpoint-registry.js';
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
  const registry = new CliRegistry();
  registry.register(sampleSourceDescriptor, (config) => new SampleSource(config));
  registry.register(memorySourceDescriptor, (config) => new MemorySource(config));
  registry.register(httpJsonDescriptor, (config) => new HttpJsonSource(config));
  // loads @nats-io/* on first use: without them a run fails with dependency_missing
  registry.register(jetStreamDescriptor, (config) => new JetStreamSource(config));
  registry.register(
    fileObjectStoreSinkDescriptor,
    ({ root, ...config }) => new ObjectStoreSink({ ...config, store: new FileSystemObjectStore({ root }) }),
  );
  const pg = await importOptionalPeers(() => import('../postgres/index.js'), PG_PEERS, 'The PostgreSQL endpoints');
  if (pg.module) {
    const pgModule = pg.module;
    registry.register(pgModule.postgresSourceDescriptor, (config) => new pgModule.PostgresSource(config));
    registry.register(pgModule.postgresSinkDescriptor, (config) => new pgModule.PostgresSink(config));
    registry.register(pgModule.cdmJdbcSinkDescriptor, (config) => new pgModule.CdmJdbcSink(config));
    registry.register(pgModule.postgresCdcSourceDescriptor, (config) => new pgModule.PostgresCdcSource(config));
  } else {
    for (const id of ['postgres', 'cdm.jdbc', 'postgres.cdc']) registry.unavailable.set(id, pg.missing);
  }
  const mysql = await importOptionalPeers(() => import('../mysql/index.js'), MYSQL_PEERS, 'The MySQL endpoints');
  if (mysql.module) {
    const mysqlModule = mysql.module;
    registry.register(mysqlModule.mySqlSourceDescriptor, (config) => new mysqlModule.MySqlSource(config));
    registry.register(mysqlModule.mySqlSinkDescriptor, (config) => new mysqlModule.MySqlSink(config));
  } else {
    registry.unavailable.set('mysql', mysql.missing);
  }
  return registry;
}

/** The optional peers of the PostgreSQL and MySQL subpaths, as one install command installs them. @internal */
export const PG_PEERS = ['pg', 'pg-copy-streams', 'kysely'];
/** @internal */
export const MYSQL_PEERS = ['mysql2', 'kysely'];

/**
 * The CLI's registry: an endpoint whose optional peers are not installed is `unavailable` — asking for it fails with
 * `dependency_missing` naming the package and the install command, not "Unknown endpoint".
 */
class CliRegistry extends EndpointRegistry {
  readonly unavailable = new Map<string, IngestError>();

  override async create(req: EndpointRequest): Promise<SourceEndpoint<any> | SinkEndpoint> {
    const missing = this.unavailable.get(req?.endpointId);
    if (missing && !this.has(req.endpointId, req.role)) throw missing;
    return super.create(req);
  }
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

/**
 * Load a subpath whose optional peers (`peers`, one install command) may be missing: the module, or the
 * `dependency_missing` error to report when it is asked for — naming the package Node could not find and
 * `npm install <peers>`.
 * @internal
 */
export async function importOptionalPeers<T>(
  load: () => Promise<T>,
  peers: string[],
  usedBy: string,
): Promise<{ module: T; missing?: undefined } | { module?: undefined; missing: IngestError }> {
  try {
    return { module: await load() };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    return { missing: dependencyMissing(err, peers, usedBy) };
  }
}

/** `dependency_missing` for a failed import of optional `peers`. @internal */
export function dependencyMissing(err: unknown, peers: string[], usedBy: string): IngestError {
  const text = err instanceof Error ? err.message : String(err);
  const m = /Cannot find (?:package|module) '([^']+)'/.exec(text);
  const found = m?.[1] ?? '';
  const name = peers.find((p) => found === p || found.startsWith(`${p}/`)) ?? peers.join(', ');
  const install = `npm install ${peers.join(' ')}`;
  return new IngestError(
    'dependency_missing',
    `${usedBy} need the optional package "${name}", which is not installed: run \`${install}\``,
    { cause: err, retryable: false, details: { package: name, install } },
  );
}
