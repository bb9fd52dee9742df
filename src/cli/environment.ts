import type { CodecSpec } from '../codecs/codec-registry.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { RecordCodec, StagingProvider } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { registerSecret } from '../errors/redact.js';
import { FileKvStore } from '../fs/file-kv-store.js';
import { FileSystemObjectStore } from '../fs/file-system-object-store.js';
import { createEndpoint, type EndpointOf } from '../host/endpoints.js';
import { MemoryKvStore } from '../memory/memory-kv-store.js';
import type { UnitRef } from '../pipeline/options.js';
import type { EndpointRegistry } from '../registry/endpoint-registry.js';
import { MemoryStagingProvider } from '../staging/memory-staging-provider.js';
import { ObjectStoreStagingProvider } from '../staging/object-store-staging-provider.js';
import { importOptionalPeers } from './builtins.js';
import type { PipelineFile } from './pipeline-file.js';

/**
 * The staging provider a pipeline file names. `codec` is `ndjson` (default), `ndjson.gz`, or one that loads an optional
 * subpath with its peers: `arrow` (`apache-arrow`), `pg-copy` (the PostgreSQL pass-through; `pg`) and `mysql-tsv`
 * (the MySQL pass-through; `mysql2`).
 * @throws IngestError `dependency_missing` when the codec's optional dependencies are not installed
 * @internal
 */
export async function createStaging(spec: NonNullable<PipelineFile['staging']>): Promise<StagingProvider> {
  if (spec.type === 'memory') return new MemoryStagingProvider();
  const codec = await resolveFileCodec(spec.codec);
  return new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: spec.root }),
    ...(codec ? { codec } : {}),
    ...(spec.prefix ? { prefix: spec.prefix } : {}),
  });
}

type FileCodec = NonNullable<Extract<NonNullable<PipelineFile['staging']>, { type: 'filesystem' }>['codec']>;

async function resolveFileCodec(name: FileCodec | undefined): Promise<CodecSpec | undefined> {
  if (name === undefined || name === 'ndjson' || name === 'ndjson.gz') return name;
  const loaders: Record<Exclude<FileCodec, 'ndjson' | 'ndjson.gz'>, [string, () => Promise<RecordCodec>]> = {
    arrow: ['apache-arrow', async () => (await import('../arrow/index.js')).arrowCodec()],
    'pg-copy': ['pg pg-copy-streams', async () => (await import('../postgres/index.js')).pgCopyCodec()],
    'mysql-tsv': ['mysql2', async () => (await import('../mysql/index.js')).mySqlLoadDataCodec()],
  };
  const [peers, load] = loaders[name];
  const codec = await importOptionalPeers(load, peers.split(' '), `The staging codec "${name}"`);
  if (codec.missing) throw codec.missing;
  return codec.module;
}

/** An open KvStore and how to release it. @internal */
export interface OpenKv {
  kv: KvStore;
  close(): Promise<void>;
}

/**
 * Open the KvStore a pipeline file names. `postgres` (and `mysql`: `mysql2` and `kysely`) loads the optional peers `pg` and `kysely`, and creates the
 * table (`kv_entries` unless `table` says otherwise) when it does not exist.
 * @throws IngestError `dependency_missing` when `postgres` (or `mysql`) is asked for and its peers are not installed
 * @internal
 */
export async function openKv(spec: NonNullable<PipelineFile['kv']>): Promise<OpenKv> {
  if (spec.type === 'memory') return { kv: new MemoryKvStore(), close: async () => {} };
  if (spec.type === 'file') return { kv: new FileKvStore({ path: spec.path }), close: async () => {} };
  if (spec.type === 'mysql') return openMySqlKv(spec);
  const loaded = await importOptionalPeers(
    () => Promise.all([import('kysely'), import('pg'), import('../postgres/kv-store.js')] as const),
    ['pg', 'kysely'],
    'The KvStore of type "postgres"',
  );
  if (loaded.missing) throw loaded.missing;
  const [{ Kysely, PostgresDialect }, pgModule, { PostgresKvStore }] = loaded.module;
  try {
    const password = new URL(spec.connectionString).password;
    if (password) registerSecret(decodeURIComponent(password));
  } catch {
    // a socket path: nothing to register (the file was validated by loadPipelineFile)
  }
  const pool = new pgModule.default.Pool({ connectionString: spec.connectionString, max: 4, allowExitOnIdle: true });
  pool.on('error', () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const { type: _type, connectionString: _url, ...where } = spec; // table, schema
  return migrated(db, () => new PostgresKvStore({ db, ...where }));
}

/** `kv: { type: mysql, connectionString, table?, database? }`: a {@link MySqlKvStore} on a small pool of its own. */
async function openMySqlKv(spec: Extract<NonNullable<PipelineFile['kv']>, { type: 'mysql' }>): Promise<OpenKv> {
  const loaded = await importOptionalPeers(
    () =>
      Promise.all([
        import('kysely'),
        import('mysql2'),
        import('../mysql/kv-store.js'),
        import('../mysql/connection.js'),
      ] as const),
    ['mysql2', 'kysely'],
    'The KvStore of type "mysql"',
  );
  if (loaded.missing) throw loaded.missing;
  const [{ Kysely, MysqlDialect }, mysqlModule, { MySqlKvStore }, { parseMySqlConnectionString }] = loaded.module;
  // registers the password as a secret; throws config_invalid naming what is wrong
  const options = parseMySqlConnectionString(spec.connectionString);
  const pool = mysqlModule.default.createPool({ ...options, charset: 'utf8mb4', connectionLimit: 4 });
  const db = new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
  const { type: _type, connectionString: _url, ...where } = spec; // table, database
  return migrated(db, () => new MySqlKvStore({ db, ...where }));
}

/** A SQL KvStore on `db` with its table created; `db` is destroyed when that fails, and on close. */
async function migrated(
  db: { destroy(): Promise<void> },
  create: () => KvStore & { migrate(): Promise<void> },
): Promise<OpenKv> {
  try {
    const kv = create();
    await kv.migrate();
    return { kv, close: () => db.destroy() };
  } catch (err) {
    await db.destroy().catch(() => {});
    throw err;
  }
}

/** Run `fn` with the pipeline file's KvStore open, and close it afterwards. @internal */
export async function withKv<T>(spec: NonNullable<PipelineFile['kv']>, fn: (kv: KvStore) => Promise<T>): Promise<T> {
  const { kv, close } = await openKv(spec);
  try {
    return await fn(kv);
  } finally {
    await close().catch(() => {});
  }
}

/** The unit a command works on: ids from the pipeline file (endpoint ids default to the descriptor ids). @internal */
export function unitRefOf(
  file: PipelineFile,
  unitId: string,
): Required<Pick<UnitRef, 'workspaceId' | 'vendor'>> & UnitRef {
  return {
    workspaceId: file.workspaceId ?? 'default',
    vendor: file.source.vendor ?? file.source.type,
    endpointId: file.source.id ?? file.source.type,
    unitId,
    sinkId: file.sink.id ?? file.sink.type,
  };
}

/** Create the pipeline file's source or sink through the registry. @internal */
export function createFileEndpoint<R extends keyof EndpointOf>(
  registry: EndpointRegistry,
  file: PipelineFile,
  role: R,
): Promise<EndpointOf[R]> {
  const spec = file[role];
  return createEndpoint(registry, role, { endpointId: spec.type, config: spec.config ?? {} });
}

/**
 * Create both endpoints; when either config is invalid, one `config_invalid` lists the issues of both.
 * @throws IngestError `config_invalid`
 * @internal
 */
export async function createEndpoints(
  registry: EndpointRegistry,
  file: PipelineFile,
): Promise<{ source: SourceEndpoint<any>; sink: SinkEndpoint }> {
  const [source, sink] = await Promise.allSettled([
    createFileEndpoint(registry, file, 'source'),
    createFileEndpoint(registry, file, 'sink'),
  ]);
  if (source.status === 'fulfilled' && sink.status === 'fulfilled') return { source: source.value, sink: sink.value };
  const failures = [source, sink].flatMap((r, i) =>
    r.status === 'rejected' ? [{ role: i === 0 ? 'source' : 'sink', err: r.reason }] : [],
  );
  if (source.status === 'fulfilled') await source.value.close?.().catch(() => {});
  if (sink.status === 'fulfilled') await sink.value.close?.().catch(() => {});
  if (failures.length === 1 || !failures.every((f) => IngestError.is(f.err, 'config_invalid'))) throw failures[0].err;
  const message = failures.map((f) => `${f.role}: ${(f.err as Error).message}`).join('; ');
  const issues = failures.flatMap((f) => ((f.err as IngestError).details.issues as unknown[] | undefined) ?? []);
  throw new IngestError('config_invalid', message, { details: { issues } });
}
