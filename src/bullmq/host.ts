import type { Logger } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingProvider } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import type { RunPolicy } from '../pipeline/options.js';
import type { EndpointRegistry } from '../registry/endpoint-registry.js';
import type { EndpointConfigRef, EndpointResolver } from '../temporal/activity-types.js';

export type { EndpointConfigRef, EndpointResolver };

/**
 * How a process turns endpoint ids into endpoints: the registry of connector factories plus a resolver or a static map.
 * @public
 */
export interface EndpointWiring {
  /** Creates sources and sinks from their configs (validated by each descriptor's zod schema). */
  registry: EndpointRegistry;
  /** Resolves endpoint ids to configs. Takes precedence over `endpoints`. */
  resolveEndpoint?: EndpointResolver;
  /** Static endpoint configs by id, for processes with a fixed set of endpoints. */
  endpoints?: Record<string, EndpointConfigRef>;
}

/** Everything a worker needs besides the endpoints. @public */
export interface IngestionHostOptions extends EndpointWiring {
  /** One staging provider, or several by id (chosen per job with `stagingProviderId`). Shared by every worker (S3). */
  staging: StagingProvider | Record<string, StagingProvider>;
  /** Checkpoints, run state and leases; shared by every worker (e.g. `PostgresKvStore`). */
  kv: KvStore;
  /** Provider used when a job names none. @defaultValue the only provider, else `'default'` */
  defaultStagingProviderId?: string;
  /** Sink used when a job has no `sinkId`. */
  defaultSinkId?: string;
  /** Workspace used when a job has none. @defaultValue 'default' */
  workspaceId?: string;
  /** Run policy under each job's `policy` (the job wins field by field). */
  policy?: RunPolicy;
  /** Console- or pino-like logger. @defaultValue no logging */
  logger?: Logger | Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
}

/** Resolve an endpoint id to its config ref. @throws IngestError `config_invalid` for an unknown id */
export async function resolveEndpoint(
  wiring: EndpointWiring,
  id: string,
  role: 'source' | 'sink',
): Promise<EndpointConfigRef> {
  const ref = wiring.resolveEndpoint ? await wiring.resolveEndpoint(id, role) : wiring.endpoints?.[id];
  if (!ref) {
    throw new IngestError(
      'config_invalid',
      `Unknown ${role} endpoint "${id}": no resolveEndpoint and no entry in endpoints`,
      {
        details: { endpointId: id, role },
      },
    );
  }
  return ref;
}

/** Create a source or sink through the registry; factory failures become `source_failed` / `sink_failed`. */
export async function createEndpoint<T extends SourceEndpoint<any> | SinkEndpoint>(
  wiring: EndpointWiring,
  id: string,
  ref: EndpointConfigRef,
  role: 'source' | 'sink',
): Promise<T> {
  const spec = { endpointId: ref.endpointId, config: ref.config };
  try {
    return (role === 'source' ? await wiring.registry.createSource(spec) : await wiring.registry.createSink(spec)) as T;
  } catch (err) {
    throw IngestError.wrap(
      err,
      role === 'source' ? 'source_failed' : 'sink_failed',
      `Cannot create ${role} endpoint "${id}" (${ref.endpointId})`,
      { endpointId: id, role },
    );
  }
}

/** Pick the staging provider of a job. @throws IngestError `config_invalid` */
export function pickStaging(
  staging: IngestionHostOptions['staging'],
  id: string | undefined,
  defaultId: string | undefined,
): StagingProvider {
  if (isProvider(staging)) {
    if (id === undefined || id === staging.id || id === defaultId) return staging;
    throw new IngestError('config_invalid', `Unknown staging provider "${id}" (known: ${staging.id})`);
  }
  const keys = Object.keys(staging);
  const key = id ?? defaultId ?? (keys.length === 1 ? keys[0] : 'default');
  const byKey = staging[key] ?? Object.values(staging).find((p) => p.id === key);
  if (!byKey || !isProvider(byKey)) {
    throw new IngestError('config_invalid', `Unknown staging provider "${key}" (known: ${keys.join(', ')})`);
  }
  return byKey;
}

function isProvider(v: unknown): v is StagingProvider {
  return (
    v != null &&
    typeof (v as StagingProvider).allocateSession === 'function' &&
    typeof (v as StagingProvider).openSession === 'function'
  );
}

/** The job's policy over the worker's, field by field (`retry` merged one level deeper). */
export function mergePolicy(base: RunPolicy | undefined, over: RunPolicy | undefined): RunPolicy {
  const out: RunPolicy = { ...base, ...over };
  if (base?.retry || over?.retry) out.retry = { ...base?.retry, ...over?.retry };
  return out;
}
