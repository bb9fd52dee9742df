import type { Logger } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { noopLogger } from '../util/logger.js';
import { checkpointKey, type ParsedStateKey, parseStateKey, runStateKey } from './keys.js';
import type { UnitRef } from './options.js';

/** Options of {@link pruneState}. @public */
export interface PruneStateOptions {
  kv: KvStore;
  /**
   * Receipts of runs that finished before this are expired: a `Date`, or an age in milliseconds. Inside the window a
   * run id stays unusable (a repeat returns its result, an abandoned or superseded id is refused); past it the id
   * is forgotten by the KvStore and the sink's ledger together.
   */
  olderThan: Date | number;
  /**
   * The sink whose ledger holds the runs' slices (`forgetRuns`), for every unit — or one per `sinkId` (`''` for units
   * without one). A unit whose sink is not given keeps its receipts (deleting them while a ledger still holds their
   * slices would let a reused run id import nothing): they are counted in `receiptsKept`.
   */
  sinks: SinkEndpoint | Record<string, SinkEndpoint>;
  /** Only these units (default: every unit of the workspace found in the KvStore). */
  units?: UnitRef[];
  /** The workspace to prune when `units` is not given. @defaultValue 'default' */
  workspaceId?: string;
  signal?: AbortSignal;
  logger?: Logger;
}

/** What {@link pruneState} did. @public */
export interface PruneStateReport {
  unitsScanned: number;
  receiptsScanned: number;
  /** Receipts deleted, after their runs' ledger rows. */
  receiptsDeleted: number;
  /** Receipts inside the window, of the unit's current run, or of a unit whose sink was not given. */
  receiptsKept: number;
  /** Runs whose ledger rows the sinks forgot. */
  ledgerRunsForgotten: number;
}

interface UnitReceipts {
  ref: UnitRef;
  expired: Array<{ runId: string; key: string; version: number }>;
}

/**
 * Expire old run receipts and the matching rows of the sinks' ledgers, together: for each unit, the sink forgets the
 * expired runs first (`forgetRuns`), then their receipts are deleted (compare-and-set on the version read), so a
 * crash in between leaves receipts whose ledger rows are gone — a reuse of such an id is still refused — never the
 * reverse. The unit's checkpoint, run state and lease (one entry each) are never touched, nor the receipt of the run
 * its run state names. After a prune the KvStore holds, per unit, three entries plus the receipts of the window.
 *
 * @example
 * ```ts
 * import { pruneState } from '@nucleus/ingestion';
 * const report = await pruneState({ kv, sinks: sink, olderThan: 30 * 24 * 3600_000 });
 * ```
 * @throws IngestError `kv_failed`, `sink_failed` (nothing of that unit is deleted then), `aborted`
 * @public
 */
export async function pruneState(opts: PruneStateOptions): Promise<PruneStateReport> {
  const { kv } = opts;
  const logger = opts.logger ?? noopLogger;
  const cutoff = opts.olderThan instanceof Date ? opts.olderThan.getTime() : Date.now() - opts.olderThan;
  if (!Number.isFinite(cutoff)) {
    throw new IngestError('config_invalid', 'Expected `olderThan` to be a Date or a number of milliseconds');
  }
  const report: PruneStateReport = {
    unitsScanned: 0,
    receiptsScanned: 0,
    receiptsDeleted: 0,
    receiptsKept: 0,
    ledgerRunsForgotten: 0,
  };
  const units = new Map<string, UnitReceipts>();
  const scopes = opts.units
    ? opts.units.map((u) => {
        const ref = { ...u, vendor: u.vendor ?? 'default', workspaceId: u.workspaceId ?? 'default' };
        return { scopeId: ref.workspaceId, keyPrefix: `${runStateKey(checkpointKey(ref)).key}::`, ref };
      })
    : [{ scopeId: opts.workspaceId ?? 'default', keyPrefix: 'ingest::', ref: undefined }];
  for (const scope of scopes) {
    if (scope.ref) units.set(unitId(scope.ref), { ref: scope.ref, expired: [] });
    for await (const entry of kv.list({ namespace: 'ingestion', scopeId: scope.scopeId, keyPrefix: scope.keyPrefix })) {
      throwIfAborted(opts.signal, 'pruneState');
      const parsed = parseStateKey(entry.key);
      if (parsed?.kind !== 'receipt' || !parsed.runId) continue;
      const ref = scope.ref ?? refOf(parsed, scope.scopeId);
      const id = unitId(ref);
      let u = units.get(id);
      if (!u) units.set(id, (u = { ref, expired: [] }));
      report.receiptsScanned++;
      const at = Date.parse(String((entry.value as { at?: unknown } | null)?.at ?? ''));
      if (Number.isFinite(at) && at < cutoff)
        u.expired.push({ runId: parsed.runId, key: entry.key, version: entry.version });
      else report.receiptsKept++;
    }
  }
  for (const u of units.values()) {
    report.unitsScanned++;
    if (u.expired.length === 0) continue;
    const sink = sinkOf(opts.sinks, u.ref.sinkId ?? '');
    const cp = checkpointKey({ ...u.ref, vendor: u.ref.vendor ?? 'default' });
    const current = (await kv.get(runStateKey(cp)))?.value as { runId?: string } | null | undefined;
    const expired = u.expired.filter((r) => r.runId !== current?.runId);
    report.receiptsKept += u.expired.length - expired.length;
    if (!sink) {
      report.receiptsKept += expired.length;
      logger.warn('pruneState: no sink given for this unit; its receipts are kept', {
        unitId: u.ref.unitId,
        sinkId: u.ref.sinkId ?? null,
        receipts: expired.length,
      });
      continue;
    }
    if (expired.length === 0) continue;
    if (sink.forgetRuns) {
      await sink.forgetRuns({ unitId: u.ref.unitId, runIds: expired.map((r) => r.runId) });
      report.ledgerRunsForgotten += expired.length;
    }
    const runKey = runStateKey(cp);
    for (const r of expired) {
      throwIfAborted(opts.signal, 'pruneState');
      if (await kv.delete({ ...runKey, key: r.key }, { expectedVersion: r.version })) report.receiptsDeleted++;
      else report.receiptsKept++;
    }
  }
  logger.info('pruneState done', { ...report });
  return report;
}

function unitId(u: UnitRef): string {
  return JSON.stringify([u.workspaceId ?? 'default', u.vendor ?? 'default', u.endpointId, u.unitId, u.sinkId ?? '']);
}

function refOf(p: ParsedStateKey, workspaceId: string): UnitRef {
  return {
    workspaceId,
    vendor: p.vendor,
    endpointId: p.endpointId,
    unitId: p.unitId,
    ...(p.sinkId !== '' ? { sinkId: p.sinkId } : {}),
  };
}

function sinkOf(sinks: PruneStateOptions['sinks'], sinkId: string): SinkEndpoint | undefined {
  if (typeof (sinks as SinkEndpoint).import === 'function') return sinks as SinkEndpoint;
  const map = sinks as Record<string, SinkEndpoint>;
  return Object.hasOwn(map, sinkId) ? map[sinkId] : undefined;
}
