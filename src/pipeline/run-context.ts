import { hostname } from 'node:os';
import type { IngestionContext, IngestionEvent, Logger } from '../contracts/context.js';
import type { KvKey } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { redactDeep } from '../errors/redact.js';
import { withKvTimeout } from '../kv/timed-kv-store.js';
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

/** What the contexts of one call share: the abort controller (following the user's signal), the run-state store. */
type Wire = { readonly controller: AbortController; readonly detach: () => void; readonly stateStore: RunStateStore };

/** What acquiring the lease brought: the lease, and the checkpoint (`version: null`: none) and run state under it. */
type Held = {
  readonly lease: Lease;
  readonly checkpoint: { readonly value: Json | null; readonly version: number | null };
  readonly loadedState: RunState | undefined;
};

/**
 * Everything one pipeline call shares: resolved options, the lease, the checkpoint it started from,
 * the unit's run state as loaded, the combined abort signal, and event/log plumbing. Immutable: acquiring the lease
 * ({@link RunContext.acquire}) and adopting a pending run's id ({@link RunContext.forRun}) return new contexts that
 * share the signal and the run-state store.
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
  readonly workerId: string;
  readonly stateStore: RunStateStore;
  readonly signal: AbortSignal;
  readonly checkpoint: Held['checkpoint'];
  /** The unit's run state as loaded (may belong to an earlier run). */
  readonly loadedState: RunState | undefined;
  readonly #wire: Wire;
  readonly #held: Held | undefined;

  private constructor(
    readonly opts: BaseRunOptions,
    readonly runId: string,
    wire: Wire | undefined,
    held?: Held,
  ) {
    const u = opts.unit;
    this.workspaceId = u.workspaceId ?? 'default';
    this.vendor = u.vendor ?? 'default';
    this.endpointId = u.endpointId;
    this.unitId = u.unitId;
    this.sinkId = u.sinkId;
    this.policy = resolvePolicy(opts.policy);
    this.logger = opts.logger ? toLogger(opts.logger) : noopLogger;
    this.cpKey = checkpointKey({ ...u, vendor: this.vendor, workspaceId: this.workspaceId });
    this.workerId = opts.workerId ?? `${hostname()}:${process.pid}`;
    this.#wire = wire ?? wireUp(opts, new RunStateStore(opts.kv, runStateKey(this.cpKey)));
    this.stateStore = this.#wire.stateStore;
    this.signal = this.#wire.controller.signal;
    this.#held = held;
    this.checkpoint = held?.checkpoint ?? { value: null, version: null };
    this.loadedState = held?.loadedState;
  }

  /** A context without the lease yet (no I/O): for checks that must happen before any state is written. */
  static create(opts: BaseRunOptions): RunContext {
    // every KvStore call of the run — lease renewals included — has a time limit (ADR 0017)
    const kv = withKvTimeout(opts.kv, resolvePolicy(opts.policy).kvTimeoutMs);
    return new RunContext({ ...opts, kv }, opts.runId ?? newRunId(), undefined);
  }

  /** The unit's lease (the fencing token is its `epoch`). @throws IngestError `internal` before {@link acquire} */
  get lease(): Lease {
    if (!this.#held) throw new IngestError('internal', `Run ${this.runId} has no lease yet (${this.where()})`);
    return this.#held.lease;
  }

  /**
   * Acquire the unit's lease and load the checkpoint and run state; returns the context that holds them.
   * @throws IngestError `lease_held`, `aborted`, `kv_failed`
   */
  async acquire(): Promise<RunContext> {
    const { opts } = this;
    let lease: Lease;
    try {
      if (this.signal.aborted) throw abortError(this.signal, 'Run');
      lease = await Lease.acquire(opts.kv, leaseKey(this.cpKey), {
        owner: this.workerId,
        runId: this.runId,
        ttlMs: this.policy.leaseTtlMs,
      });
    } catch (err) {
      this.#wire.detach();
      throw kvError(err, 'Could not acquire the unit lease');
    }
    lease.startRenewal((err) => {
      this.logger.error('lease lost; aborting run', { runId: lease.runId, unitId: this.unitId });
      this.#wire.controller.abort(
        IngestError.is(err, 'lease_lost')
          ? err
          : new IngestError('lease_lost', 'Lease could not be renewed; aborting to stay fenced', { cause: err }),
      );
    });
    try {
      const entry = await opts.kv.get(this.cpKey);
      const checkpoint = entry ? { value: entry.value, version: entry.version } : { value: null, version: null };
      const loadedState = await this.stateStore.load();
      return new RunContext(opts, this.runId, this.#wire, { lease, checkpoint, loadedState });
    } catch (err) {
      this.#wire.detach();
      // a store that answers but holds invalid state: let the lease go at once (a failing store: it expires)
      if (IngestError.is(err, 'state_invalid')) await lease.release();
      else lease.abandon();
      throw kvError(err, 'Could not read the checkpoint or run state');
    }
  }

  /** This context for run `runId` (a resumed or repeated run keeps its own id). */
  forRun(runId: string): RunContext {
    return runId === this.runId ? this : new RunContext(this.opts, runId, this.#wire, this.#held);
  }

  /** Give up before the lease was taken (detach from the user's signal). */
  dispose(): void {
    this.#wire.detach();
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
      ...(this.#held ? { fencingToken: this.#held.lease.epoch } : {}),
      logger: this.logger,
      emit: (e) => this.emit(e),
    };
  }

  /** Deliver an event to `onEvent` with ids and time filled in; a throwing listener is logged, not fatal. */
  emit(e: EventInput | IngestionEvent): void {
    const onEvent = this.opts.onEvent;
    if (!onEvent) return;
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
      onEvent(event);
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
    this.#wire.detach();
    if (!this.#held) return;
    if (release) await this.#held.lease.release();
    else this.#held.lease.abandon();
  }
}

/** The call's abort controller, following the user's signal. */
function wireUp(opts: BaseRunOptions, stateStore: RunStateStore): Wire {
  const controller = new AbortController();
  const user = opts.signal;
  const onUserAbort = () => controller.abort(user?.reason);
  if (user?.aborted) controller.abort(user.reason);
  else user?.addEventListener('abort', onUserAbort, { once: true });
  return { controller, detach: () => user?.removeEventListener('abort', onUserAbort), stateStore };
}

function kvError(err: unknown, message: string): IngestError {
  if (IngestError.is(err)) return err;
  // retryable only when the store's failure is known to be transient (ADR 0017)
  return new IngestError('kv_failed', `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
