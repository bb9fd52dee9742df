import { hostname } from 'node:os';
import type { IngestionContext, IngestionEvent, Logger } from '../contracts/context.js';
import type { KvKey } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { redactDeep } from '../errors/redact.js';
import { abortError } from '../util/abort.js';
import { newRunId } from '../util/ids.js';
import { noopLogger, toLogger } from '../util/logger.js';
import { checkpointKey, leaseKey, runStateKey } from './keys.js';
import { Lease } from './lease.js';
import type { BaseRunOptions, ResolvedRunPolicy } from './options.js';
import { resolvePolicy } from './options.js';
import { type RunState, RunStateStore } from './run-state.js';

type EventInput = {
  [K in IngestionEvent['type']]: Omit<
    Extract<IngestionEvent, { type: K }>,
    'at' | 'runId' | 'workspaceId' | 'endpointId' | 'unitId' | 'sinkId'
  >;
}[IngestionEvent['type']];

/**
 * Everything one pipeline call shares: resolved options, the lease, the checkpoint it started from,
 * the unit's run state, the combined abort signal, and event/log plumbing.
 * @internal
 */
export class RunContext {
  readonly workspaceId: string;
  readonly vendor: string;
  readonly endpointId: string;
  readonly unitId: string;
  readonly sinkId: string | undefined;
  readonly policy: ResolvedRunPolicy;
  readonly logger: Logger;
  readonly cpKey: KvKey;
  readonly stateStore: RunStateStore;
  readonly signal: AbortSignal;
  readonly workerId: string;
  readonly startedAt = new Date().toISOString();
  runId: string;
  lease!: Lease;
  checkpoint: { value: Json | null; version: number | null } = { value: null, version: null };
  /** The unit's run state as loaded (may belong to an earlier run). */
  loadedState: RunState | undefined;
  readonly #controller = new AbortController();
  readonly #onEvent: ((e: IngestionEvent) => void) | undefined;
  readonly #detach: () => void;

  private constructor(readonly opts: BaseRunOptions) {
    const u = opts.unit;
    this.workspaceId = u.workspaceId ?? 'default';
    this.vendor = u.vendor ?? 'default';
    this.endpointId = u.endpointId;
    this.unitId = u.unitId;
    this.sinkId = u.sinkId;
    this.policy = resolvePolicy(opts.policy);
    this.logger = opts.logger ? toLogger(opts.logger) : noopLogger;
    this.cpKey = checkpointKey({ ...u, vendor: this.vendor, workspaceId: this.workspaceId });
    this.stateStore = new RunStateStore(opts.kv, runStateKey(this.cpKey));
    this.workerId = opts.workerId ?? `${hostname()}:${process.pid}`;
    this.runId = opts.runId ?? newRunId();
    this.#onEvent = opts.onEvent;
    const user = opts.signal;
    const onUserAbort = () => this.#controller.abort(user?.reason);
    if (user?.aborted) this.#controller.abort(user.reason);
    else user?.addEventListener('abort', onUserAbort, { once: true });
    this.#detach = () => user?.removeEventListener('abort', onUserAbort);
    this.signal = this.#controller.signal;
  }

  /** A context without the lease yet (no I/O): for checks that must happen before any state is written. */
  static create(opts: BaseRunOptions): RunContext {
    return new RunContext(opts);
  }

  /**
   * Acquire the unit's lease and load the checkpoint and run state.
   * @throws IngestError `lease_held`, `aborted`, `kv_failed`
   */
  static async open(opts: BaseRunOptions): Promise<RunContext> {
    const rc = new RunContext(opts);
    await rc.acquire();
    return rc;
  }

  /**
   * Acquire the unit's lease and load the checkpoint and run state.
   * @throws IngestError `lease_held`, `aborted`, `kv_failed`
   */
  async acquire(): Promise<void> {
    const opts = this.opts;
    try {
      if (this.signal.aborted) throw abortError(this.signal, 'Run');
      this.lease = await Lease.acquire(opts.kv, leaseKey(this.cpKey), {
        owner: this.workerId,
        runId: this.runId,
        ttlMs: this.policy.leaseTtlMs,
      });
    } catch (err) {
      this.#detach();
      throw kvError(err, 'Could not acquire the unit lease');
    }
    this.lease.startRenewal((err) => {
      this.logger.error('lease lost; aborting run', { runId: this.runId, unitId: this.unitId });
      this.#controller.abort(
        IngestError.is(err, 'lease_lost')
          ? err
          : new IngestError('lease_lost', 'Lease could not be renewed; aborting to stay fenced', { cause: err }),
      );
    });
    try {
      const entry = await opts.kv.get(this.cpKey);
      this.checkpoint = entry ? { value: entry.value, version: entry.version } : { value: null, version: null };
      this.loadedState = await this.stateStore.load();
    } catch (err) {
      await this.close(false);
      throw kvError(err, 'Could not read the checkpoint or run state');
    }
  }

  /** Give up before the lease was taken (detach from the user's signal). */
  dispose(): void {
    this.#detach();
  }

  /** The context handed to endpoint calls. */
  ctx(): IngestionContext {
    return {
      workspaceId: this.workspaceId,
      endpointId: this.endpointId,
      unitId: this.unitId,
      ...(this.sinkId !== undefined ? { sinkId: this.sinkId } : {}),
      runId: this.runId,
      vendor: this.vendor,
      signal: this.signal,
      ...(this.lease ? { fencingToken: this.lease.epoch } : {}),
      logger: this.logger,
      emit: (e) => this.emit(e),
    };
  }

  /** Deliver an event to `onEvent` with ids and time filled in; a throwing listener is logged, not fatal. */
  emit(e: EventInput | IngestionEvent): void {
    if (!this.#onEvent) return;
    const event = {
      at: new Date().toISOString(),
      runId: this.runId,
      workspaceId: this.workspaceId,
      endpointId: this.endpointId,
      unitId: this.unitId,
      ...(this.sinkId !== undefined ? { sinkId: this.sinkId } : {}),
      ...redactDeep(e),
    } as IngestionEvent;
    try {
      this.#onEvent(event);
    } catch (err) {
      this.logger.warn('onEvent listener threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Attributes for spans and metrics. */
  attrs(): Record<string, string> {
    return {
      'ingestion.workspace_id': this.workspaceId,
      'ingestion.endpoint_id': this.endpointId,
      'ingestion.unit_id': this.unitId,
      'ingestion.run_id': this.runId,
      ...(this.sinkId ? { 'ingestion.sink_id': this.sinkId } : {}),
    };
  }

  /** Describe this run in messages: endpoint, unit, run. */
  where(slice?: number): string {
    return `endpoint ${this.endpointId}, unit ${this.unitId}, run ${this.runId}${slice === undefined ? '' : `, slice ${slice}`}`;
  }

  /** Throw `aborted` (or `lease_lost`) when the run's signal fired. */
  throwIfAborted(what = 'Run'): void {
    if (this.signal.aborted) throw abortError(this.signal, `${what} (${this.where()})`);
  }

  /** Release (normal end or failure) or abandon (crash-like) the lease, detach from the user's signal. */
  async close(release: boolean): Promise<void> {
    this.#detach();
    if (!this.lease) return;
    if (release) await this.lease.release();
    else this.lease.abandon();
  }
}

function kvError(err: unknown, message: string): IngestError {
  if (IngestError.is(err)) return err;
  return new IngestError('kv_failed', `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    retryable: true,
  });
}
