import type { KvEntry } from '../../contracts/kv-store.js';
import type { SourceEndpoint } from '../../contracts/source-endpoint.js';
import type { Json } from '../../contracts/values.js';
import { redact, redactDeep } from '../../errors/redact.js';
import { checkpointKey, leaseKey, runStateKey, schemaHistoryKey } from '../../pipeline/keys.js';
import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import { createFileEndpoint, unitRefOf, withKv } from '../environment.js';
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
  registry?: EndpointRegistry,
): Promise<number> {
  const unit = unitRefOf(file, unitId);
  const key = checkpointKey(unit);
  const [checkpoint, run, lease, schema] = await withKv(file.kv!, (kv) =>
    Promise.all([kv.get(key), kv.get(runStateKey(key)), kv.get(leaseKey(key)), kv.get(schemaHistoryKey(key))]),
  );
  const leaseValue = lease?.value as { state?: string; expiresAt?: string } | undefined;
  const live = leaseValue?.state === 'held' && !!leaseValue.expiresAt && Date.parse(leaseValue.expiresAt) > Date.now();
  const lag = registry ? await lagOf(registry, file, unitId, checkpoint?.value ?? null) : undefined;
  const doc = {
    unit,
    key,
    checkpoint: entry(checkpoint),
    run: run?.value == null ? null : entry(run), // `null`: a rolled-back run left none
    lease: lease ? { ...entry(lease)!, live } : null,
    ...(lag ? { lag } : {}),
    schema: schemaView(schema),
  };
  if (tty) tty.write(`${describeStatus(doc)}\n`);
  else reporter.document('status', doc);
  return 0;
}

/** A source that can count what it holds after a checkpoint (a stream's pending messages, e.g. `JetStreamSource`). */
interface LagSource {
  pending(unitId: string, checkpoint: Json | null): Promise<number>;
}

/**
 * The unit's lag, for sources that can tell it: `{ pending }` messages after the stored checkpoint, or `{ error }`
 * when the source could not be asked (status never fails on it); `undefined` for other sources.
 */
async function lagOf(
  registry: EndpointRegistry,
  file: PipelineFile,
  unitId: string,
  checkpoint: Json | null,
): Promise<{ pending: number } | { error: string } | undefined> {
  if (!registry.descriptors().some((d) => d.id === file.source.type && d.family === 'stream')) return undefined;
  let source: (SourceEndpoint<any> & Partial<LagSource>) | undefined;
  try {
    source = await createFileEndpoint(registry, file, 'source');
    if (typeof source.pending !== 'function') return undefined;
    return { pending: await source.pending(unitId, checkpoint) };
  } catch (err) {
    return { error: redact((err as Error).message) };
  } finally {
    await source?.close?.().catch(() => {});
  }
}

/** The status as a few readable lines, for a terminal. */
function describeStatus(doc: {
  unit: { workspaceId: string; endpointId: string; unitId: string; sinkId?: string };
  key: { key: string };
  checkpoint: EntryView | null;
  run: EntryView | null;
  lease: (EntryView & { live: boolean }) | null;
  lag?: { pending: number } | { error: string };
  schema: SchemaView | null;
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
  if (doc.lag)
    rows.push([
      'lag',
      'pending' in doc.lag ? `${doc.lag.pending} messages after the checkpoint` : `unknown (${doc.lag.error})`,
    ]);
  const sc = doc.schema;
  rows.push([
    'schema',
    sc
      ? `version ${sc.version} (${sc.columns} columns, hash ${sc.hash}, since ${sc.seenAt})${sc.lastChange ? `; last change ${sc.lastChange.at}: ${sc.lastChange.summary}` : ''}`
      : 'none recorded',
  ]);
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n');
}

/** The unit's schema history, in brief: version, hash, columns, last change (docs/schema-evolution.md). */
interface SchemaView {
  [k: string]: Json;
  version: number;
  hash: string;
  seenAt: string;
  columns: number;
  lastChange: { at: string; fromVersion: number; summary: string } | null;
}

function schemaView(e: KvEntry | undefined): SchemaView | null {
  const h = e?.value as
    | {
        current?: { version: number; hash: string; seenAt: string; columns: unknown[] };
        lastChange?: SchemaView['lastChange'];
      }
    | undefined;
  if (!h?.current) return null;
  return {
    version: h.current.version,
    hash: h.current.hash,
    seenAt: h.current.seenAt,
    columns: Array.isArray(h.current.columns) ? h.current.columns.length : 0,
    lastChange: h.lastChange ?? null,
  };
}
