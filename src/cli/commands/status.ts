import type { KvEntry } from '../../contracts/kv-store.js';
import type { Json } from '../../contracts/values.js';
import { redact, redactDeep } from '../../errors/redact.js';
import { checkpointKey, leaseKey, runStateKey } from '../../pipeline/keys.js';
import { unitRefOf, withKv } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

interface EntryView {
  value: Json;
  version: number;
  updatedAt: string;
  expiresAt: string | null;
}

const entry = (e: KvEntry | undefined): EntryView | null =>
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
export async function statusCommand(
  file: PipelineFile,
  unitId: string,
  reporter: Reporter,
  tty?: { write(text: string): unknown },
): Promise<number> {
  const unit = unitRefOf(file, unitId);
  const key = checkpointKey(unit);
  const [checkpoint, run, lease] = await withKv(file.kv!, (kv) =>
    Promise.all([kv.get(key), kv.get(runStateKey(key)), kv.get(leaseKey(key))]),
  );
  const leaseValue = lease?.value as { state?: string; expiresAt?: string } | undefined;
  const live = leaseValue?.state === 'held' && !!leaseValue.expiresAt && Date.parse(leaseValue.expiresAt) > Date.now();
  const doc = {
    unit,
    key,
    checkpoint: entry(checkpoint),
    run: run?.value == null ? null : entry(run), // `null`: a rolled-back run left none
    lease: lease ? { ...entry(lease)!, live } : null,
  };
  if (tty) tty.write(`${describeStatus(doc)}\n`);
  else reporter.document('status', doc);
  return 0;
}

/** The status as a few readable lines, for a terminal. */
function describeStatus(doc: {
  unit: { workspaceId: string; endpointId: string; unitId: string; sinkId?: string };
  key: { key: string };
  checkpoint: EntryView | null;
  run: EntryView | null;
  lease: (EntryView & { live: boolean }) | null;
}): string {
  const u = doc.unit;
  const run = doc.run?.value as
    | {
        runId?: string;
        phase?: string;
        rowsExported?: number;
        rowsImported?: number;
        slices?: number;
        lastError?: { code: string; message: string } | null;
      }
    | undefined;
  const lease = doc.lease?.value as { state?: string; owner?: string; expiresAt?: string } | undefined;
  const rows: string[][] = [
    ['unit', `${u.unitId}  (${u.endpointId} → ${u.sinkId ?? '-'}, workspace ${u.workspaceId})`],
    ['key', doc.key.key],
    [
      'checkpoint',
      doc.checkpoint
        ? `${JSON.stringify(redactDeep(doc.checkpoint.value))}  (KvStore entry version ${doc.checkpoint.version}, written ${doc.checkpoint.updatedAt})`
        : 'none yet',
    ],
    [
      'last run',
      run
        ? `${run.runId} ${run.phase}  exported ${run.rowsExported ?? 0}, imported ${run.rowsImported ?? 0}, slices ${run.slices ?? 0}, updated ${doc.run?.updatedAt}`
        : 'none',
    ],
  ];
  if (run?.lastError) rows.push(['last error', `[${run.lastError.code}] ${redact(run.lastError.message)}`]);
  rows.push([
    'lease',
    lease
      ? `${doc.lease?.live ? 'held' : lease.state === 'held' ? 'expired' : 'free'}  (last holder ${lease.owner}, until ${lease.expiresAt})`
      : 'never taken',
  ]);
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n');
}
