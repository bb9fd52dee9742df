import { z } from 'zod';
import type { Logger } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { StagingProvider } from '../contracts/staging.js';
import { configInvalid } from '../errors/config-invalid.js';
import type { RunPolicy } from '../pipeline/options.js';
import { toLogger } from '../util/logger.js';
import type { EndpointWiring } from './endpoints.js';
import { type StagingChoice, stagingChoice } from './staging-choice.js';

/** Everything a worker (BullMQ processor, Temporal activities) needs besides the endpoints. @public */
export interface IngestionHostOptions extends EndpointWiring {
  /** One staging provider, or several by id (chosen per call with `stagingProviderId`). Shared by every worker (S3). */
  staging: StagingProvider | Record<string, StagingProvider>;
  /** Checkpoints, run state and leases; shared by every worker (e.g. `PostgresKvStore`). */
  kv: KvStore;
  /** Provider used when a call names none. @defaultValue the only provider, else `'default'` */
  defaultStagingProviderId?: string;
  /** Sink used when a call has no `sinkId`. */
  defaultSinkId?: string;
  /** Workspace used when a call has none. @defaultValue 'default' */
  workspaceId?: string;
  /** Run policy under each call's `policy` (the call wins field by field). */
  policy?: RunPolicy;
  /** Console- or pino-like logger. @defaultValue no logging */
  logger?: Logger | Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
}

/** zod shape of {@link IngestionHostOptions}, for each orchestrator's options schema. @internal */
export const hostOptionsShape = {
  registry: z.custom(
    (v) => v != null && typeof (v as any).createSource === 'function' && typeof (v as any).createSink === 'function',
    { error: 'Expected `registry` to be an EndpointRegistry' },
  ),
  staging: z.custom((v) => v != null && typeof v === 'object', {
    error: 'Expected `staging` to be a StagingProvider or a record of them',
  }),
  kv: z.custom((v) => v != null && ['get', 'put', 'delete', 'list'].every((f) => typeof (v as any)[f] === 'function'), {
    error: 'Expected `kv` to implement get(), put(), delete(), list()',
  }),
  resolveEndpoint: z
    .custom((v) => typeof v === 'function', { error: 'Expected `resolveEndpoint` to be a function' })
    .optional(),
  endpoints: z.record(z.string(), z.object({ endpointId: z.string().min(1), config: z.unknown() })).optional(),
  defaultStagingProviderId: z.string().min(1).optional(),
  defaultSinkId: z.string().min(1).optional(),
  workspaceId: z.string().min(1).optional(),
};

/**
 * Check a host's options once, with the orchestrator's schema (built on {@link hostOptionsShape}), and index its
 * staging providers.
 * @throws IngestError `config_invalid`: `Invalid <name> options` and every issue
 * @internal
 */
export function checkHostOptions(
  schema: z.ZodType,
  options: IngestionHostOptions,
  name: string,
): { pickStaging: StagingChoice; logger: Logger } {
  const parsed = schema.safeParse(options);
  if (!parsed.success) throw configInvalid(`Invalid ${name} options`, parsed.error.issues);
  const pickStaging = stagingChoice(options.staging, options.defaultStagingProviderId, `Invalid ${name} options`);
  return { pickStaging, logger: toLogger(options.logger) };
}

/** The call's policy over the host's, field by field (`retry` merged one level deeper). @internal */
export function mergePolicy(base: RunPolicy | undefined, over: RunPolicy | undefined): RunPolicy {
  const out: RunPolicy = { ...base, ...over };
  if (base?.retry || over?.retry) out.retry = { ...base?.retry, ...over?.retry };
  return out;
}
