import type { Disposition, ImportResult, ImportSlice, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { RecordReader, StagedSlice, StagingSession } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { diffSchemas, hasChanges } from '../schema/schema-diff.js';
import { recordRows } from '../telemetry/tracing.js';
import { abortable } from '../util/abort.js';
import type { ExportHooks } from './export-phase.js';
import { LiveSlice } from './live-slice.js';
import { stagingCall } from './phase-support.js';
import type { RunContext } from './run-context.js';
import type { RunState } from './run-state.js';
import { readSchemaHistory, versionSchema } from './schema-history.js';
import { SliceFeed } from './slice-feed.js';

/** What an overlapped import reads of its run (the export step's `RunCall`). @internal */
export interface OverlapRun {
  readonly rc: RunContext;
  readonly state: RunState;
  readonly session: StagingSession;
  readonly source?: SourceEndpoint<any>;
  readonly sink?: SinkEndpoint;
  readonly disposition: Disposition;
  readonly primaryKey?: string[];
}

/**
 * The import of an overlapped run (docs/decisions/0018-overlapped-import.md): started once the plan is known, fed
 * each slice as soon as it is staged, ended once the session is sealed. Overlap only where it is safe and possible:
 * a call that imports (`runUnit`), a sink that streams (`importSlices`), a planned export whose plan recorded the
 * schema (a resumed run re-exports exactly the missing slices under the same bounds, and the sink's ledger skips the
 * ones it committed), `policy.overlap` not `false`, and a source that cannot void its plans (no `planValid`).
 * @internal
 */
export class OverlappedImport {
  readonly #call: OverlapRun;
  #feed: SliceFeed | undefined;
  #running: Promise<{ ok: ImportResult } | { err: unknown }> | undefined;
  #rows = 0;
  #finished = false;
  /** Slices handed to the sink while they export (live-slice.ts), by index. */
  readonly #live = new Map<number, LiveSlice>();

  private constructor(call: OverlapRun) {
    this.#call = call;
  }

  /** The overlapped import of `call`, or undefined when the run keeps its phases apart. */
  static of(call: OverlapRun): OverlappedImport | undefined {
    const { rc, sink, source } = call;
    // a source that may void a recorded plan (`planValid`) keeps its phases apart: no slice of a plan voided later
    // (an exported snapshot that died with its process) may reach the sink
    if (!source || !sink?.importSlices || !rc.policy.overlap || source.planValid) return undefined;
    return new OverlappedImport(call);
  }

  /** The sink has been handed slices (the run moved to `streaming`). */
  get started(): boolean {
    return this.#running !== undefined;
  }

  /** What the export phase calls: the plan, then every staged slice. */
  readonly hooks: ExportHooks = {
    planned: (plan, staged, estimatedRows) => this.#start(plan, staged, estimatedRows),
    staged: (index) => this.#staged(index),
    ready: (index) => this.#feed?.wanted(index) ?? Promise.resolve(),
    live: (index, codec) => this.#takeLive(index, codec),
  };

  /**
   * A pass-through slice starts exporting: hand it to the sink now if the sink would take it next and has nothing
   * else waiting. Never again after a failed attempt: the retry goes through staging (live-slice.ts).
   */
  #takeLive(index: number, codec: string): LiveSlice | undefined {
    const known = this.#live.get(index);
    if (known) return known.lost || known.sealed ? undefined : known;
    if (!this.#feed || !this.#call.rc.policy.overlap || !this.#feed.takesNext(index)) return undefined;
    const { rc, session } = this.#call;
    const live = new LiveSlice(index, codec, () => session.reader({ slice: index, signal: rc.signal }));
    this.#live.set(index, live);
    this.#feed.push(live.importSlice((reader) => guarded(rc.signal, reader, rc.throwIfAborted.bind(rc))));
    return live;
  }

  async #start(
    plan: readonly { index: number }[],
    staged: readonly StagedSlice[],
    estimatedRows: number | undefined,
  ): Promise<void> {
    const { rc, state, sink } = this.#call;
    // a plan without a schema: the sink could not create the target before the last slice; keep the phases apart
    if (!state.schema?.fields.length) return;
    const history = await readSchemaHistory(rc.opts.kv, rc.cpKey);
    await rc.stateStore.save(state, 'streaming', {
      disposition: this.#call.disposition,
      ...(this.#call.primaryKey ? { primaryKey: this.#call.primaryKey } : {}),
    });
    const indices = plan.map((s) => s.index);
    const ordered = this.#call.disposition !== 'append';
    const feed = (this.#feed = new SliceFeed(ordered ? indices : undefined));
    const schema = state.schema;
    const previous = history ? versionSchema(history.current) : undefined;
    const diff = previous ? diffSchemas(previous, schema) : undefined;
    const primaryKey = this.#call.primaryKey ?? schema.primaryKey;
    rc.logger.info('importing slices as they are staged (overlapped import)', {
      runId: rc.runId,
      slices: indices.length,
      alreadyStaged: staged.length,
    });
    this.#running = sink!.importSlices!(
      {
        unitId: rc.unitId,
        slices: feed,
        sliceIndices: indices,
        ...(estimatedRows !== undefined ? { rowsTotal: estimatedRows } : {}),
        schema,
        ...(diff && hasChanges(diff) ? { schemaDiff: diff } : {}),
        disposition: this.#call.disposition,
        ...(primaryKey ? { primaryKey } : {}),
      },
      rc.ctx(),
    ).then(
      (ok) => {
        feed.close();
        return { ok };
      },
      (err) => {
        feed.close();
        return { err };
      },
    );
    for (const s of staged) this.#push(s);
  }

  async #staged(index: number): Promise<void> {
    if (!this.#feed) return;
    const { rc, session } = this.#call;
    const desc = await stagingCall(rc, () => session.describe(), 'describing the session', index);
    const s = desc.slices.find((x) => x.index === index);
    if (!s) {
      throw new IngestError(
        'staging_corrupt',
        `Slice ${index} was staged but its manifest entry is missing (${rc.where(index)})`,
        {
          details: { slice: index },
        },
      );
    }
    this.#push(s);
  }

  #push(s: StagedSlice): void {
    const { rc, session } = this.#call;
    this.#rows += s.rows;
    const live = this.#live.get(s.index);
    if (live) {
      // handed over while it exported: its reader ends now that it is staged
      live.seal(s);
      return;
    }
    const reader = session.reader({ slice: s.index, signal: rc.signal });
    const slice: ImportSlice = {
      index: s.index,
      rows: s.rows,
      reader: guarded(rc.signal, reader, rc.throwIfAborted.bind(rc)),
      ...(s.handle ? { handle: s.handle } : {}),
      ...(s.codec ? { codec: s.codec } : {}),
    };
    this.#feed!.push(slice);
  }

  /**
   * The export failed: no more slices reach the sink (a `replace` rolls back; slices in flight finish and commit —
   * each was verified to its end), and the import is awaited, so no transaction outlives the run.
   */
  async cancel(reason: unknown): Promise<void> {
    if (!this.#running || this.#finished) return;
    this.#feed!.fail(reason);
    for (const live of this.#live.values()) live.abandon(reason);
    const r = await this.#running;
    if ('err' in r) this.#call.rc.logger.info('overlapped import stopped with the export', { error: String(r.err) });
  }

  /** The session is sealed: the last slices go in; resolves with what the sink reports, or throws its failure. */
  async finish(): Promise<ImportResult> {
    const { rc } = this.#call;
    this.#finished = true;
    this.#feed!.end();
    const r = await this.#running!;
    if ('err' in r) {
      if (rc.signal.aborted && !IngestError.is(r.err, 'staging_corrupt')) rc.throwIfAborted('Import');
      throw IngestError.wrap(r.err, 'sink_failed', `Sink failed (${rc.where()})`);
    }
    const out = r.ok;
    if (!out || typeof out.rowsImported !== 'number') {
      throw new IngestError('sink_failed', `Sink returned no rowsImported count (${rc.where()})`, { retryable: false });
    }
    if (out.rowsImported !== this.#rows) {
      rc.logger.warn('sink reported a different row count than was staged', {
        rowsStaged: this.#rows,
        rowsImported: out.rowsImported,
        runId: rc.runId,
      });
    }
    recordRows('imported', out.rowsImported, rc.attrs());
    return out;
  }
}

/** A slice reader that stops within a batch once the run is aborted. */
function guarded(signal: AbortSignal, reader: RecordReader, check: (what: string) => void): RecordReader {
  return {
    ...(reader.iterEncoded ? { iterEncoded: () => abortable(reader.iterEncoded!(), signal, 'Import') } : {}),
    async *iterBatches(chunkSize: number) {
      for await (const batch of reader.iterBatches(chunkSize)) {
        check('Import');
        yield batch;
      }
    },
  };
}
