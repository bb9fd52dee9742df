import type { StagingProvider } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';

/** One staging provider, or several by id. @internal */
export type StagingProviders = StagingProvider | Record<string, StagingProvider>;

/** Picks the provider a call names, else the default. @internal */
export type StagingChoice = (id: string | undefined, where: string) => StagingProvider;

/**
 * Index a host's staging providers by key and by their own `id`, checked once. The default is
 * `defaultId`, else the only provider, else the one keyed `'default'`.
 * @throws IngestError `config_invalid` (messages start with `where`) for an empty record, a value that is not a
 * provider, or a `defaultId` no provider has; the returned function throws it for an unknown id
 * @internal
 */
export function stagingChoice(staging: StagingProviders, defaultId: string | undefined, where: string): StagingChoice {
  const byId = new Map<string, StagingProvider>();
  const entries: Array<[string, StagingProvider]> = isProvider(staging)
    ? [[staging.id, staging]]
    : Object.entries(staging);
  const bad = entries.filter(([, p]) => !isProvider(p)).map(([k]) => `"${k}"`);
  if (entries.length === 0 || bad.length > 0) {
    throw new IngestError(
      'config_invalid',
      `${where}: staging: ${entries.length === 0 ? 'Expected at least one StagingProvider' : `${bad.join(', ')} is not a StagingProvider`}`,
    );
  }
  for (const [key, p] of entries) {
    byId.set(key, p);
    if (!byId.has(p.id)) byId.set(p.id, p);
  }
  if (defaultId !== undefined && !byId.has(defaultId)) {
    throw new IngestError(
      'config_invalid',
      `${where}: defaultStagingProviderId: "${defaultId}" is not a configured provider`,
    );
  }
  const fallback = defaultId ?? (entries.length === 1 ? entries[0][0] : 'default');
  return (id, at) => {
    const key = id ?? (byId.has(fallback) ? fallback : undefined);
    const p = key === undefined ? undefined : byId.get(key);
    if (!p) {
      throw new IngestError(
        'config_invalid',
        `${at}: stagingProviderId: unknown staging provider "${key ?? '(none)'}" (known: ${[...byId.keys()].join(', ')})`,
      );
    }
    return p;
  };
}

function isProvider(v: unknown): v is StagingProvider {
  return (
    v != null &&
    typeof (v as StagingProvider).allocateSession === 'function' &&
    typeof (v as StagingProvider).openSession === 'function'
  );
}
