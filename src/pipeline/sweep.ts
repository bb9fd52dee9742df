import type { KvStore } from '../contracts/kv-store.js';
import type { StagingProvider, StagingSessionRef, SweepReport } from '../contracts/staging.js';
import { checkpointKey, leaseKey, runStateKey } from './keys.js';
import type { LeaseValue } from './lease.js';
import { isPending } from './run-policy.js';
import type { RunState } from './run-state.js';

/** Options of {@link sweepStaging}. @public */
export interface SweepStagingOptions {
  staging: StagingProvider;
  kv: KvStore;
  /** Landed runs older than this are deleted. */
  olderThanMs: number;
  /** Runs that never landed are deleted only past this age. @defaultValue `7 * olderThanMs` */
  abandonedAfterMs?: number;
  signal?: AbortSignal;
}

/**
 * TTL cleanup of staged runs that spares every run whose unit lease is live or whose run state is
 * still pending (it may be resumed).
 *
 * @example
 * ```ts
 * import { sweepStaging } from '@nucleus/ingestion';
 * const report = await sweepStaging({ staging, kv, olderThanMs: 7 * 24 * 3600_000 });
 * ```
 * @public
 */
export async function sweepStaging(opts: SweepStagingOptions): Promise<SweepReport> {
  const { kv } = opts;
  const keep = async (ref: StagingSessionRef): Promise<boolean> => {
    const cp = checkpointKey({
      workspaceId: ref.workspaceId,
      vendor: ref.vendor ?? 'default',
      endpointId: ref.endpointId,
      unitId: ref.unitId,
      sinkId: ref.sinkId,
    });
    const lease = await kv.get<LeaseValue>(leaseKey(cp));
    if (lease && lease.value.state === 'held' && Date.parse(lease.value.expiresAt) > Date.now()) return true;
    const state = (await kv.get(runStateKey(cp)))?.value as unknown as RunState | undefined;
    return !!state && state.runId === ref.runId && isPending(state.phase);
  };
  return opts.staging.sweep({
    olderThanMs: opts.olderThanMs,
    ...(opts.abandonedAfterMs !== undefined ? { abandonedAfterMs: opts.abandonedAfterMs } : {}),
    keep,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}
