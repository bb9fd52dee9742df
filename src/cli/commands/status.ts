import type { KvEntry } from '../../contracts/kv-store.js';
import { checkpointKey, leaseKey, runStateKey } from '../../pipeline/keys.js';
import { unitRefOf, withKv } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

const entry = (e: KvEntry | undefined) =>
  e
    ? {
        value: e.value,
        version: e.version,
        updatedAt: e.updatedAt.toISOString(),
        expiresAt: e.expiresAt?.toISOString() ?? null,
      }
    : null;

/**
 * `nucleus-ingest status`: the unit's checkpoint, run state and lease, straight from the KvStore.
 * @internal
 */
export async function statusCommand(file: PipelineFile, unitId: string, reporter: Reporter): Promise<number> {
  const unit = unitRefOf(file, unitId);
  const key = checkpointKey(unit);
  const [checkpoint, run, lease] = await withKv(file.kv!, (kv) =>
    Promise.all([kv.get(key), kv.get(runStateKey(key)), kv.get(leaseKey(key))]),
  );
  const leaseValue = lease?.value as { state?: string; expiresAt?: string } | undefined;
  const live = leaseValue?.state === 'held' && !!leaseValue.expiresAt && Date.parse(leaseValue.expiresAt) > Date.now();
  reporter.document('status', {
    unit,
    key,
    checkpoint: entry(checkpoint),
    run: entry(run),
    lease: lease ? { ...entry(lease), live } : null,
  });
  return 0;
}
