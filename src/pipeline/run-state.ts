import type { Logger, RunPhase } from '../contracts/context.js';
import type { KvKey, KvStore } from '../contracts/kv-store.js';
import type { Disposition } from '../contracts/sink-endpoint.js';
import type { SliceSpec } from '../contracts/source-endpoint.js';
import type { StagingSessionRef } from '../contracts/staging.js';
import type { Json, RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { logFailure } from '../util/best-effort.js';
import { receiptKey } from './keys.js';
import { canMove, sameJson } from './run-policy.js';
import { receiptSchema, runStateSchema, STATE_FORMAT, validState } from './state-schema.js';

/** One sealed slice as the run state records it (to check the session before import and commit). @public */
export interface SealedSliceRecord {
  index: number;
  rows: number;
  /** Hex sha256, when the staging provider computes one. */
  sha256?: string;
}

/**
 * The JSON kept at `<checkpoint key>::run`: enough for any worker to resume a run from its staged data.
 * It never holds secrets or rows — only ids, counters, the session ref and checkpoints.
 * @public
 */
export interface RunState {
  /** The run state's format (1, set when written); a reader refuses an unknown one with `state_invalid`. */
  format?: number;
  runId: string;
  phase: RunPhase;
  mode: 'full' | 'incremental';
  stagingProvider: string;
  sessionRef: StagingSessionRef;
  /** Version of the checkpoint entry the run started from (`null`: there was none). */
  baseCheckpointVersion: number | null;
  /** The checkpoint that becomes current when the run commits; known once export finished (or planned). */
  plannedCheckpoint?: Json | null;
  /** The checkpoint current after the run committed (what a repeated call with this run id returns). */
  committedCheckpoint?: Json | null;
  /** Planned slices (when the source has a planner), so a resumed export re-reads only unfinished ones. */
  plan?: SliceSpec[] | null;
  /**
   * The schema the plan announced. The import hands it to the sink when staging holds none (an empty table staged
   * no slice), so a sink can still create the target.
   */
  schema?: RecordSchema;
  /**
   * How the run imports (recorded by `runUnit`, or by `importUnit` when it starts importing). A resume that asks
   * for another disposition or primary key is refused with `run_state_invalid`.
   */
  disposition?: Disposition;
  primaryKey?: string[] | null;
  /** The slices sealed at the end of the export; import and commit check the session still holds exactly these. */
  sealedSlices?: SealedSliceRecord[];
  rowsExported?: number;
  rowsImported?: number;
  /** Rows sent to the dead-letter sink instead of staged (`policy.onRejectedRow: 'dead-letter'`). */
  rowsRejected?: number;
  slices?: number;
  bytesStaged?: number;
  /** An incremental run that found nothing new: nothing was staged and the checkpoint was not written. */
  empty?: boolean;
  startedAt: string;
  updatedAt: string;
  /** How many times a worker started or resumed this run. */
  attempts: number;
  lastError?: { code: string; message: string; at: string } | null;
  /** Set by `abandonRun()`. */
  abandoned?: { at: string; reason?: string; by: string } | null;
  /**
   * With a process-local staging provider (memory): the process whose memory holds the session. Another process
   * discards the run instead of resuming it (its staged rows are gone).
   */
  stagingProcess?: string;
}

/**
 * What is kept at `<checkpoint key>::run::<runId>` once a run is finished: `committed` (with the run's final
 * state, so a call repeating the run id gets the same result), `abandoned` (by `abandonRun()`), or `superseded`
 * (a pending run dropped because the checkpoint moved under it, or its mode changed). A run id with a receipt is
 * never run again: the sink's ledger already knows its slices, so a second run under it would import nothing
 * while its checkpoint moved.
 * @public
 */
export interface RunReceipt {
  [k: string]: Json;
  runId: string;
  outcome: 'committed' | 'abandoned' | 'superseded';
  at: string;
  /** The run state when the run finished (without its plan and slice list). */
  state: Json;
}

/**
 * The only writer of run state and run receipts. Every write is a compare-and-set on the version read last,
 * so only the lease holder's writes land; every phase change is checked against the transition table in
 * `run-policy.ts`.
 * @internal
 */
export class RunStateStore {
  #version: number | null = null;

  constructor(
    private readonly kv: KvStore,
    readonly key: KvKey,
  ) {}

  /** Read the unit's run state (and remember its version for the next compare-and-set). */
  async load(): Promise<RunState | undefined> {
    const entry = await this.kv.get(this.key);
    this.#version = entry ? entry.version : null;
    // `null`: a rolled-back run left no run state
    if (entry?.value == null) return undefined;
    return validState<RunState>(runStateSchema, entry.value, 'run state', this.key.key);
  }

  /**
   * Save `state` as the unit's run state, moving it to `to` (default: the phase it has).
   * @throws IngestError `lease_lost` when another worker wrote the run state meanwhile; `internal` for a
   * transition the table does not allow
   */
  async save(state: RunState, to: RunPhase = state.phase, patch: Partial<RunState> = {}): Promise<void> {
    if (!canMove(state.phase, to)) {
      throw new IngestError('internal', `Run ${state.runId} cannot move from phase ${state.phase} to ${to}`, {
        details: { from: state.phase, to },
      });
    }
    Object.assign(state, patch);
    state.phase = to;
    state.updatedAt = new Date().toISOString();
    await this.#put(state, state.runId);
  }

  /**
   * The one way a run ends committed: its `committed` receipt first (from then on its id returns its result), then
   * the run state. `done` says what it committed (`committedCheckpoint`, counters).
   * @throws IngestError `lease_lost`, `kv_failed`, `internal` (a phase that cannot commit)
   */
  async finishCommitted(state: RunState, done: Partial<RunState>): Promise<void> {
    const patch: Partial<RunState> = { lastError: null, ...done };
    // Keep one copy of the checkpoint, not two: once committed, the planned checkpoint is the committed one (a
    // large boundary checkpoint doubled the run state and the receipt; ADR 0017).
    if (
      done.committedCheckpoint !== undefined &&
      state.plannedCheckpoint !== undefined &&
      sameJson(state.plannedCheckpoint, done.committedCheckpoint)
    ) {
      patch.plannedCheckpoint = undefined;
    }
    // The plan (slice bounds, a boundary's fingerprints) only serves a resumed export: a committed run drops it, as
    // its receipt does, so the run state stays as small as the checkpoint allows (ADR 0005, bounded checkpoints).
    patch.plan = undefined;
    await this.writeReceipt({ ...state, ...patch, phase: 'committed' }, 'committed');
    await this.save(state, 'committed', patch);
  }

  /** Record a failure on the pending run (never throws: the run's own error is what the caller reports; logged). */
  async recordFailure(state: RunState, err: IngestError, logger?: Logger): Promise<void> {
    state.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
    await this.save(state).catch(logFailure(logger, 'recording the failure in the run state', { runId: state.runId }));
  }

  /**
   * Undo a fresh run that staged nothing: put back the run state it replaced, or write `null` ("no run state") when
   * there was none — a put, so the key's version sequence goes on (unlike a delete), and visible at once (unlike the
   * 1 ms TTL and the sleep this replaced).
   * @throws IngestError `lease_lost`, `kv_failed`
   */
  async rollback(current: RunState, previous: RunState | undefined): Promise<void> {
    await this.#put(previous ?? null, current.runId);
  }

  /** The receipt of `runId`, if that run finished. */
  async receipt(runId: string): Promise<RunReceipt | undefined> {
    try {
      const entry = await this.kv.get<RunReceipt>(this.receiptKey(runId));
      if (!entry) return undefined;
      return validState<RunReceipt>(receiptSchema, entry.value, 'receipt', this.receiptKey(runId).key);
    } catch (err) {
      throw IngestError.wrap(err, 'kv_failed', `Could not read the receipt of run ${runId}`);
    }
  }

  /**
   * Record that `state`'s run finished. A `committed` receipt overwrites; the others are only written where no
   * receipt exists (they never replace a committed one).
   * @throws IngestError `kv_failed`
   */
  async writeReceipt(state: RunState, outcome: RunReceipt['outcome']): Promise<void> {
    // The plan and the slice list are not needed to answer a repeat: keep receipts small.
    const { plan: _plan, sealedSlices: _slices, ...kept } = state;
    const receipt: RunReceipt = {
      format: STATE_FORMAT,
      runId: state.runId,
      outcome,
      at: new Date().toISOString(),
      state: toJson(kept as RunState),
    };
    try {
      await this.kv.put(
        this.receiptKey(state.runId),
        receipt,
        outcome === 'committed' ? {} : { expectedVersion: null },
      );
    } catch (err) {
      if (outcome !== 'committed' && IngestError.is(err, 'kv_conflict')) return;
      throw IngestError.wrap(err, 'kv_failed', `Could not write the receipt of run ${state.runId}`);
    }
  }

  /** Key of a run's receipt: `<checkpoint key>::run::<runId>`. */
  receiptKey(runId: string): KvKey {
    return receiptKey(this.key, runId);
  }

  async #put(state: RunState | null, runId: string): Promise<void> {
    try {
      const entry = await this.kv.put(
        this.key,
        state === null ? null : { ...(toJson(state) as { [k: string]: Json }), format: STATE_FORMAT },
        {
          expectedVersion: this.#version,
        },
      );
      this.#version = entry.version;
    } catch (err) {
      if (IngestError.is(err, 'kv_conflict')) {
        throw new IngestError(
          'lease_lost',
          `Run state ${this.key.key} was changed by another worker; run ${runId} is fenced off`,
          { cause: err, retryable: true },
        );
      }
      throw IngestError.wrap(err, 'kv_failed', `Could not write run state ${this.key.key}`);
    }
  }
}

function toJson(state: RunState): Json {
  return JSON.parse(JSON.stringify(state)) as Json;
}
