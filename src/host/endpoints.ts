import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import type { EndpointRegistry } from '../registry/endpoint-registry.js';

/**
 * A configured endpoint, as the registry creates it: the descriptor id (e.g. `'postgres'`) and its config.
 * The config is validated by the descriptor's zod schema when the endpoint is created.
 * @public
 */
export interface EndpointConfigRef {
  /** Descriptor id registered in the {@link EndpointRegistry}. */
  endpointId: string;
  config: unknown;
}

/**
 * Looks up the configuration of an endpoint instance (the `endpointId` / `sinkId` of an activity input or a job),
 * e.g. from the host's metadata database. Secrets should be resolved here, on the worker, never passed through
 * workflow history or a queue.
 * @public
 */
export type EndpointResolver = (id: string, role: 'source' | 'sink') => Promise<EndpointConfigRef> | EndpointConfigRef;

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

/** The endpoint type of a role. @internal */
export interface EndpointOf {
  source: SourceEndpoint<any>;
  sink: SinkEndpoint;
}

/**
 * Resolve an endpoint id to its config ref.
 * @throws IngestError `config_invalid` for an unknown id
 * @internal
 */
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

/**
 * Create a source or sink from `{ endpointId, config }` through the registry (errors as the registry or the
 * factory throws them).
 * @throws IngestError `config_invalid` for an unknown descriptor or an invalid config
 * @internal
 */
export async function createEndpoint<R extends keyof EndpointOf>(
  registry: EndpointRegistry,
  role: R,
  ref: EndpointConfigRef,
): Promise<EndpointOf[R]> {
  const spec = { endpointId: ref.endpointId, config: ref.config };
  return (role === 'source' ? await registry.createSource(spec) : await registry.createSink(spec)) as EndpointOf[R];
}

/**
 * Resolve an endpoint id (unless its ref is given) and create the endpoint; factory failures become `source_failed` /
 * `sink_failed` naming the id (the registry's `config_invalid` passes through).
 * @throws IngestError `config_invalid`, `source_failed`, `sink_failed`
 * @internal
 */
export async function openEndpoint<R extends keyof EndpointOf>(
  wiring: EndpointWiring,
  id: string,
  role: R,
  ref?: EndpointConfigRef,
): Promise<EndpointOf[R]> {
  const spec = ref ?? (await resolveEndpoint(wiring, id, role));
  try {
    return await createEndpoint(wiring.registry, role, spec);
  } catch (err) {
    throw IngestError.wrap(
      err,
      role === 'source' ? 'source_failed' : 'sink_failed',
      `Cannot create ${role} endpoint "${id}" (${spec.endpointId})`,
      { endpointId: id, role },
    );
  }
}
