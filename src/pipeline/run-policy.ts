/*
 * The run as data (docs/architecture.md, docs/decisions/0010-run-as-data.md): the phases of a run, the moves between
 * them, what an existing run state means to a new call, and `decide()`, the pure function that turns what a call
 * loaded into what it does. This module imports nothing: it is the one place a phase is named in a comparison, and
 * it can be read (and tested) without the I/O around it.
 */

/** The phases of a run (the same union as the contracts' `RunPhase`). @internal */
export type RunPhase = 'exporting' | 'streaming' | 'exported' | 'importing' | 'imported' | 'committed' | 'abandoned';

/** The step that moves a run out of a pending phase (`STEPS` in run-phases.ts). @internal */
export type StepName = 'export' | 'import' | 'commit';

/** What a phase means and where a run may go from it; `null` where a finished run has nothing to decide. @internal */
export interface PhaseRule {
  /** A later call resumes a run in this phase. */
  readonly pending: boolean;
  readonly step: StepName | null;
  /** Phases a run may move to (a save in the same phase is always allowed). */
  readonly next: readonly RunPhase[];
  /**
   * The unit's checkpoint moved since the run started: `drop` it (nothing of it reached the sink), `supersede` it
   * (retire its run id with a receipt), or `land` it when the checkpoint is the run's planned one (the run committed
   * and crashed before its run state said so; else supersede).
   */
  readonly checkpointMoved: 'drop' | 'supersede' | 'land' | null;
  /** The call uses another staging provider than the run staged into: `drop` the run, or `refuse` the call. */
  readonly stagingChanged: 'drop' | 'refuse' | null;
  /** The call asks for another mode (full/incremental) than the run's: `drop` it, or `resume` it as recorded. */
  readonly modeChanged: 'drop' | 'resume' | null;
  /** The run's staging session is gone on resume: `export again` into a new one, or `fail`. */
  readonly sessionGone: 'export again' | 'fail' | null;
  /** What the sink may hold of the run's rows. */
  readonly inSink: 'nothing' | 'some' | 'all';
}

/**
 * The transition table and resume policy of a run. docs/architecture.md shows it; a unit test checks they agree.
 * @internal
 */
// biome-ignore format: one row per phase, as in docs/architecture.md
export const RUN_PHASES: Readonly<Record<RunPhase, PhaseRule>> = {
  //                  step      next                                                            checkpoint   staging   mode      session gone    in sink
  exporting: pending('export', ['streaming', 'exported', 'committed', 'abandoned'],            'drop',      'drop',   'drop',   'export again', 'nothing'),
  streaming: pending('export', ['importing', 'imported', 'committed', 'abandoned'],            'supersede', 'refuse', 'resume', 'export again', 'some'),
  exported:  pending('import', ['importing', 'abandoned'],                                      'supersede', 'refuse', 'resume', 'fail',         'nothing'),
  importing: pending('import', ['imported', 'abandoned'],                                       'supersede', 'refuse', 'resume', 'fail',         'some'),
  imported:  pending('commit', ['committed'],                                                   'land',      'refuse', 'resume', 'fail',         'all'),
  committed: finished('all'),
  abandoned: finished('some'),
};

type Column<K extends keyof PhaseRule> = NonNullable<PhaseRule[K]>;

function pending(
  step: Column<'step'>,
  next: RunPhase[],
  checkpointMoved: Column<'checkpointMoved'>,
  stagingChanged: Column<'stagingChanged'>,
  modeChanged: Column<'modeChanged'>,
  sessionGone: Column<'sessionGone'>,
  inSink: Column<'inSink'>,
): PhaseRule {
  return { pending: true, step, next, checkpointMoved, stagingChanged, modeChanged, sessionGone, inSink };
}

function finished(inSink: PhaseRule['inSink']): PhaseRule {
  const none = { step: null, checkpointMoved: null, stagingChanged: null, modeChanged: null, sessionGone: null };
  return { pending: false, next: [], ...none, inSink };
}

/** The phase a new run starts in. @internal */
export const FIRST_PHASE: RunPhase = 'exporting';

/** A run in this phase is unfinished and resumable. @internal */
export function isPending(phase: RunPhase | undefined): boolean {
  return phase !== undefined && (RUN_PHASES[phase]?.pending ?? false);
}

/** The table lets a run move from `from` to `to` (staying is always allowed). @internal */
export function canMove(from: RunPhase, to: RunPhase): boolean {
  return from === to || (RUN_PHASES[from]?.next.includes(to) ?? false);
}

/**
 * The step to run next for a run in `phase` that should get to `until`; `null` once it got there (or finished).
 * `exportUnit` goes until `exported`, the other calls until `committed`.
 * @internal
 */
export function nextStep(phase: RunPhase, until: 'exported' | 'committed'): StepName | null {
  const step = RUN_PHASES[phase]?.step ?? null;
  return until === 'exported' && step !== 'export' ? null : step;
}

/** Structural equality of JSON values (key order does not matter). @internal */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string | undefined {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
      : v,
  );
}

/** The fields of a run state that `decide()` reads. @internal */
export interface RunFacts {
  readonly runId: string;
  readonly phase: RunPhase;
  readonly mode: 'full' | 'incremental';
  readonly stagingProvider: string;
  readonly baseCheckpointVersion: number | null;
  readonly plannedCheckpoint?: unknown;
  readonly disposition?: string;
  readonly primaryKey?: readonly string[] | null;
}

/** What one pipeline call brings. @internal */
export interface CallFacts {
  /** The run id the options name. */
  readonly runId?: string;
  /** `importUnit`: the run whose session it was handed (that run, and no other, is imported). */
  readonly sessionRunId?: string;
  readonly mode: 'full' | 'incremental';
  readonly stagingProvider: string;
  /** The call has a source (runUnit, exportUnit) / a sink (runUnit, importUnit). */
  readonly exports: boolean;
  readonly imports: boolean;
  readonly disposition?: string;
  readonly primaryKey?: readonly string[];
}

/** What the call loaded: the unit's run state, and the receipt of the run it names ({@link receiptNeeded}). */
export interface Loaded<S extends RunFacts> {
  readonly state?: S | undefined;
  readonly receipt?:
    | { readonly outcome: 'committed' | 'abandoned' | 'superseded'; readonly state: unknown }
    | undefined;
}

/** Why a call is refused (`run_state_invalid`). @internal */
export type Refusal =
  /** The named run finished as `outcome` (abandoned, superseded): a run id is used by one run only. */
  | { readonly why: 'run-id-used'; readonly runId: string; readonly outcome: string }
  /** The pending run staged into another provider (and is past exporting). */
  | { readonly why: 'other-staging' }
  /** importUnit was handed the session of another run than the pending one. */
  | { readonly why: 'other-run'; readonly sessionRunId: string }
  /** importUnit, and the pending run has not finished exporting. */
  | { readonly why: 'still-exporting' }
  /** The call imports with another disposition or primary key than the pending run recorded. */
  | { readonly why: 'import-differs'; readonly differs: readonly ('disposition' | 'primaryKey')[] }
  /** importUnit, and there is no exported run. */
  | { readonly why: 'nothing-exported' };

/**
 * What a call does: start a `fresh` run, `resume` the pending one, `repeat` a committed run's result, or `refuse`.
 * `settle`, done first, finishes the loaded run: `land` it (it committed, its run state did not say so yet) or
 * `supersede` it (retire its id: the checkpoint moved under it).
 * @internal
 */
export type Start<S extends RunFacts> = { readonly settle?: 'land' | 'supersede' } & (
  | { readonly kind: 'fresh' }
  | { readonly kind: 'resume'; readonly state: S }
  | { readonly kind: 'repeat'; readonly state: S }
  | { readonly kind: 'refuse'; readonly refusal: Refusal; readonly state?: S }
);

/** The run id whose receipt `decide()` needs: the named run, when it is not the loaded one. @internal */
export function receiptNeeded(state: RunFacts | undefined, call: CallFacts): string | undefined {
  const named = call.sessionRunId ?? call.runId;
  return named !== undefined && named !== state?.runId ? named : undefined;
}

/**
 * Decide what a call does with the unit's run state (pure: no I/O).
 *
 * 1. A pending run whose base checkpoint moved, whose staging provider or mode differs, is settled, dropped or
 *    refused as its phase's rule says; otherwise it is the pending run.
 * 2. A call that names no run, or names the pending run, resumes it (or starts fresh when there is none).
 * 3. A call that names a finished run — the loaded one, or one with a receipt — repeats its result if it committed,
 *    and is refused otherwise. A name nobody knows resumes the pending run (or starts fresh) under that name.
 * 4. A resume is refused when importUnit names another run or the run is still exporting, or when the call imports
 *    another way than recorded; a fresh start is refused to importUnit.
 * @internal
 */
export function decide<S extends RunFacts>(
  loaded: Loaded<S>,
  checkpoint: { readonly version: number | null; readonly value: unknown },
  call: CallFacts,
): Start<S> {
  const { state, receipt } = loaded;
  let pending: S | undefined;
  let settle: 'land' | 'supersede' | undefined;
  if (state && isPending(state.phase)) {
    const rule = RUN_PHASES[state.phase];
    if (state.baseCheckpointVersion !== checkpoint.version) {
      if (rule.checkpointMoved === 'land' && sameJson(state.plannedCheckpoint ?? null, checkpoint.value)) {
        settle = 'land';
      } else if (rule.checkpointMoved !== 'drop') settle = 'supersede';
    } else if (state.stagingProvider !== call.stagingProvider) {
      if (rule.stagingChanged === 'refuse') return { kind: 'refuse', refusal: { why: 'other-staging' }, state };
    } else if (state.mode === call.mode || rule.modeChanged === 'resume') pending = state;
  }
  const go = (start: Start<S>): Start<S> => (settle ? { ...start, settle } : start);
  const named = call.sessionRunId ?? call.runId;
  if (named !== undefined && pending?.runId !== named) {
    if (state?.runId === named && (settle || !isPending(state.phase))) {
      if (settle === 'land' || state.phase === 'committed') return go({ kind: 'repeat', state });
      const outcome = settle === 'supersede' ? 'superseded' : state.phase;
      return go({ kind: 'refuse', refusal: { why: 'run-id-used', runId: named, outcome }, state });
    }
    if (receipt?.outcome === 'committed') return go({ kind: 'repeat', state: receipt.state as S });
    if (receipt) return go({ kind: 'refuse', refusal: { why: 'run-id-used', runId: named, outcome: receipt.outcome } });
  }
  if (pending) return go(resume(pending, call));
  return go(call.exports ? { kind: 'fresh' } : { kind: 'refuse', refusal: { why: 'nothing-exported' } });
}

function resume<S extends RunFacts>(state: S, call: CallFacts): Start<S> {
  const refuse = (refusal: Refusal): Start<S> => ({ kind: 'refuse', refusal, state });
  if (call.sessionRunId !== undefined && call.sessionRunId !== state.runId) {
    return refuse({ why: 'other-run', sessionRunId: call.sessionRunId });
  }
  if (!call.exports && RUN_PHASES[state.phase].step === 'export') return refuse({ why: 'still-exporting' });
  const differs: ('disposition' | 'primaryKey')[] = [];
  if (call.imports && state.disposition !== undefined) {
    if (call.disposition !== undefined && call.disposition !== state.disposition) differs.push('disposition');
    if (call.primaryKey !== undefined && !sameJson(call.primaryKey, state.primaryKey ?? null))
      differs.push('primaryKey');
  }
  return differs.length > 0 ? refuse({ why: 'import-differs', differs }) : { kind: 'resume', state };
}
