import { z } from 'zod';
import type { ObjectInfo, ObjectStore } from '../contracts/object-store.js';
import type { StagingSessionRef, SweepOptions, SweepReport } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { ABANDONED_NAME, LANDED_NAME, MANIFEST_NAME, parseRunKey, type RunIds } from './layout.js';
import { readManifest } from './manifest.js';

const sweepOptionsSchema = z.object({
  olderThanMs: z.number().min(0),
  abandonedAfterMs: z.number().min(0).optional(),
  keep: z.custom<(ref: StagingSessionRef) => unknown>((f) => typeof f === 'function', 'must be a function').optional(),
  signal: z.custom<AbortSignal>((s) => s instanceof AbortSignal, 'must be an AbortSignal').optional(),
});

interface RunGroup {
  runDir: string;
  ids: RunIds | undefined;
  objects: ObjectInfo[];
}

/**
 * TTL sweep of every run directory under `prefix`. Objects are listed once, in key order, and handled one
 * run directory at a time (memory holds one run's listing).
 *
 * A run is landed when `_LANDED` (or `_ABANDONED`: `abandonRun()` dropped it) exists; its age is that marker's age. Any other run's age is that of its
 * newest object. Landed runs older than `olderThanMs` and other runs older than `abandonedAfterMs` are deleted
 * unless `keep(ref)` says otherwise; the manifest is deleted last.
 */
export async function sweepObjectStore(store: ObjectStore, prefix: string, opts: SweepOptions): Promise<SweepReport> {
  const parsed = sweepOptionsSchema.safeParse(opts ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
    throw new IngestError('config_invalid', `Invalid sweep options: ${issues.join('; ')}`, { details: { issues } });
  }
  const olderThanMs = opts.olderThanMs;
  const abandonedAfterMs = opts.abandonedAfterMs ?? 7 * olderThanMs;
  const signal = opts.signal;
  const now = Date.now();
  const report: SweepReport = {
    sessionsScanned: 0,
    sessionsDeleted: 0,
    sessionsKept: 0,
    objectsDeleted: 0,
    deleted: [],
  };

  const handle = async (group: RunGroup): Promise<void> => {
    throwIfAborted(signal, 'Staging sweep');
    report.sessionsScanned++;
    const landed = group.objects.find(
      (o) => o.key === `${group.runDir}/${LANDED_NAME}` || o.key === `${group.runDir}/${ABANDONED_NAME}`,
    );
    const newest = group.objects.reduce((max, o) => Math.max(max, o.lastModified?.getTime() ?? now), 0);
    const age = now - (landed ? (landed.lastModified?.getTime() ?? now) : newest);
    const due = landed ? age >= olderThanMs : age >= abandonedAfterMs;
    if (!due) {
      report.sessionsKept++;
      return;
    }
    const ref = await refOf(store, prefix, group);
    if (opts.keep && (await opts.keep(ref))) {
      report.sessionsKept++;
      return;
    }
    throwIfAborted(signal, 'Staging sweep');
    // List again: objects written since the first listing go too; the manifest goes last.
    const keys: string[] = [];
    for await (const info of store.list(`${group.runDir}/`)) keys.push(info.key);
    const manifestKey = `${group.runDir}/${MANIFEST_NAME}`;
    const rest = keys.filter((k) => k !== manifestKey);
    for (let i = 0; i < rest.length; i += 1000) await store.delete(rest.slice(i, i + 1000));
    if (keys.includes(manifestKey)) await store.delete([manifestKey]);
    report.sessionsDeleted++;
    report.objectsDeleted += keys.length;
    report.deleted.push(ref);
  };

  try {
    let group: RunGroup | undefined;
    for await (const info of store.list(`${prefix}/`)) {
      throwIfAborted(signal, 'Staging sweep');
      const parsedKey = parseRunKey(prefix, info.key);
      if (!parsedKey) continue;
      if (group && group.runDir !== parsedKey.runDir) {
        await handle(group);
        group = undefined;
      }
      group ??= { runDir: parsedKey.runDir, ids: parsedKey.ids, objects: [] };
      group.objects.push(info);
    }
    if (group) await handle(group);
  } catch (err) {
    throw IngestError.wrap(err, 'staging_failed', `Staging sweep under ${prefix}/ failed`, { prefix });
  }
  return report;
}

/** The session ref of a run directory: from its manifest, or rebuilt from the path when that is unreadable. */
async function refOf(store: ObjectStore, prefix: string, group: RunGroup): Promise<StagingSessionRef> {
  try {
    const manifest = await readManifest(store, `${group.runDir}/${MANIFEST_NAME}`);
    if (manifest) return manifest.ref;
  } catch (err) {
    if (!IngestError.is(err, 'staging_corrupt')) throw err;
  }
  const ids = group.ids ?? { workspaceId: '', endpointId: '', runId: group.runDir };
  return {
    provider: 'object-store',
    sessionId: group.runDir,
    ...ids,
    unitId: '',
    bucket: store.bucket,
    prefix,
    runDir: group.runDir,
  };
}
