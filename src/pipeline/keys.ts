import type { KvKey } from '../contracts/kv-store.js';

/** The parts of a unit that name its checkpoint. @public */
export interface CheckpointKeyParts {
  vendor: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
  workspaceId?: string;
}

/**
 * Where a unit's checkpoint lives in the KvStore:
 * `{ namespace: 'ingestion', scopeId: workspaceId ?? 'default', key: 'ingest::<vendor>::endpoint::<endpointId>::unit::<unitId>::sink::<sinkId|"">' }`.
 * Run state lives at `<key>::run`, the lease at `<key>::lease`.
 *
 * @example
 * ```ts
 * import { checkpointKey } from '@nucleus/ingestion';
 * const key = checkpointKey({ vendor: 'postgres', endpointId: 'pg-main', unitId: 'public.orders' });
 * ```
 * @public
 */
export function checkpointKey(u: CheckpointKeyParts): KvKey {
  return {
    namespace: 'ingestion',
    scopeId: u.workspaceId ?? 'default',
    key: `ingest::${u.vendor}::endpoint::${u.endpointId}::unit::${u.unitId}::sink::${u.sinkId ?? ''}`,
  };
}

/** Key of a unit's run state. @public */
export function runStateKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::run` };
}

/** Key of a unit's lease. @public */
export function leaseKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::lease` };
}

/** Key of a unit's schema history (docs/schema-evolution.md). @public */
export function schemaHistoryKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::schema` };
}
