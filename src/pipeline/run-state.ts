import type { RunPhase } from '../contracts/context.js';
import type { KvKey, KvStore } from '../contracts/kv-store.js';
import type { SliceSpec } from '../contracts/source-endpoint.js';
import type { StagingSessionRef } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/**
 * The JSON kept at `<checkpoint key>::run`: enough for any worker to resume a run from its staged data.
 * It never holds secrets or rows — only ids, counters, the session ref and checkpoints.
 * @public
 */
export interface RunState {
  runId: string;
  phase: RunPhase;
  mode: 'full' | 'incremental';
  stagingProvider: string;
  sessionRef: StagingSessionRef;
  /** Version of the checkpoint entry the run started from (`null`: there was none). */
  baseCheckpointVersion: number | null;
  /** The checkpoint that becomes current when the run commits; known once export finished (or planned). */
  plannedCheckpoint?: Json | null;
  /** Planned slices (when the source has a planner), so a resumed export re-reads only unfinished ones. */
  plan?: SliceSpec[] | null;
  rowsExported?: number;
  rowsImported?: number;
  slices?: number;
  bytesStaged?: number;
  startedAt: string;
  updatedAt: string;
  /** How many times a worker started or resumed this run. */
  attempts: number;
  lastError?: { code: string; message: string; at: string } | null;
}

/**
 * Reads and writes one unit's run state with compare-and-set, so only the lease holder's writes land.
 * @internal
 */
export class RunStateStore {
  #version: number | null = null;

  constructor(
    private readonly kv: KvStore,
    readonly key: KvKey,
  ) {}

  async load(): Promise<RunState | undefined> {
    const entry = await this.kv.get(this.key);
    this.#version = entry ? entry.version : null;
    return entry?.value as unknown as RunState | undefined;
  }

  async save(state: RunState): Promise<void> {
    state.updatedAt = new Date().toISOString();
    try {
      const entry = await this.kv.put(this.key, stripUndefined(state), { expectedVersion: this.#version });
      this.#version = entry.version;
    } catch (err) {
      if (IngestError.is(err, 'kv_conflict')) {
        throw new IngestError(
          'lease_lost',
          `Run state ${this.key.key} was changed by another worker; run ${state.runId} is fenced off`,
          {
            cause: err,
            retryable: true,
          },
        );
      }
      throw IngestError.wrap(err, 'kv_failed', `Could not write run state ${this.key.key}`);
    }
  }
}

function stripUndefined(state: RunState): Json {
  return JSON.parse(JSON.stringify(state)) as Json;
}
