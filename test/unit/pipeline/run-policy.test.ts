import { describe, expect, expectTypeOf, it } from 'vitest';
import type { RunPhase as ContractPhase } from '../../../src/contracts/context.js';
import {
  type CallFacts,
  canMove,
  decide,
  FIRST_PHASE,
  isPending,
  nextStep,
  RUN_PHASES,
  type RunFacts,
  type RunPhase,
  receiptNeeded,
  sameJson,
} from '../../../src/pipeline/run-policy.js';

const PHASES = Object.keys(RUN_PHASES) as RunPhase[];

/** A run state that started from checkpoint version 3 and plans `{ id: 9, at: 'x' }`. */
const run = (phase: RunPhase, more: Partial<RunFacts> = {}): RunFacts => ({
  runId: 'r1',
  phase,
  mode: 'incremental',
  stagingProvider: 'fs',
  baseCheckpointVersion: 3,
  plannedCheckpoint: { id: 9, at: 'x' },
  ...more,
});
/** The checkpoint still where the run started; `moved`: committed since, as the run planned (other key order). */
const same = { version: 3, value: { id: 1 } };
const movedAsPlanned = { version: 4, value: { at: 'x', id: 9 } };
const movedElsewhere = { version: 4, value: { id: 5 } };
/** runUnit's facts: a source and a sink, no run id. */
const runUnit: CallFacts = { mode: 'incremental', stagingProvider: 'fs', exports: true, imports: true };
const importUnit: CallFacts = { ...runUnit, exports: false };
const exportUnit: CallFacts = { ...runUnit, imports: false };

describe('the phase table', () => {
  it('has a row for each phase the contracts name (the two unions are one: tsc checks)', () => {
    expectTypeOf<RunPhase>().toEqualTypeOf<ContractPhase>();
    expect(PHASES).toEqual(['exporting', 'streaming', 'exported', 'importing', 'imported', 'committed', 'abandoned']);
  });

  it('gives every pending phase one step and the finished ones none, and starts runs exporting', () => {
    for (const p of PHASES) expect(RUN_PHASES[p].step !== null).toBe(RUN_PHASES[p].pending);
    expect(PHASES.filter(isPending)).toEqual(['exporting', 'streaming', 'exported', 'importing', 'imported']);
    expect(isPending(undefined)).toBe(false);
    expect(isPending('nonsense' as RunPhase)).toBe(false);
    expect(FIRST_PHASE).toBe('exporting');
  });

  it('allows the listed moves, staying put, and nothing else', () => {
    expect(canMove('exporting', 'exported')).toBe(true);
    expect(canMove('exporting', 'committed')).toBe(true);
    expect(canMove('imported', 'imported')).toBe(true);
    expect(canMove('exported', 'imported')).toBe(false);
    expect(canMove('committed', 'exporting')).toBe(false);
    expect(canMove('nonsense' as RunPhase, 'committed')).toBe(false);
  });

  it('lets every pending run be abandoned except an imported one (its rows are all in the sink)', () => {
    expect(PHASES.filter((p) => canMove(p, 'abandoned') && p !== 'abandoned')).toEqual([
      'exporting',
      'streaming',
      'exported',
      'importing',
    ]);
    expect(RUN_PHASES.imported.inSink).toBe('all');
  });

  it('lets an overlapped run stream once planned, and leave streaming only imported, importing or abandoned (ADR 0018)', () => {
    expect(canMove('exporting', 'streaming')).toBe(true);
    expect(canMove('streaming', 'imported')).toBe(true);
    expect(canMove('streaming', 'importing')).toBe(true);
    // the sink may hold some of a streaming run: it never goes back to a phase that says it holds nothing
    expect(canMove('streaming', 'exported')).toBe(false);
    expect(canMove('streaming', 'exporting')).toBe(false);
    expect(canMove('exported', 'streaming')).toBe(false);
    expect(RUN_PHASES.streaming.inSink).toBe('some');
    expect(RUN_PHASES.streaming.step).toBe('export');
    expect(nextStep('streaming', 'exported')).toBe('export');
    expect(nextStep('streaming', 'committed')).toBe('export');
  });

  it('supersedes a streaming run whose checkpoint moved, and refuses importUnit while it streams', () => {
    expect(decide({ state: run('streaming') }, movedElsewhere, runUnit)).toEqual({
      kind: 'fresh',
      settle: 'supersede',
    });
    const state = run('streaming');
    expect(decide({ state }, same, runUnit)).toEqual({ kind: 'resume', state });
    expect(decide({ state }, same, importUnit)).toMatchObject({ kind: 'refuse', refusal: { why: 'still-exporting' } });
    expect(decide({ state }, same, { ...runUnit, stagingProvider: 'other' })).toMatchObject({
      kind: 'refuse',
      refusal: { why: 'other-staging' },
    });
  });

  it('runs steps until the goal: exportUnit stops once the export is done', () => {
    expect(nextStep('exporting', 'exported')).toBe('export');
    expect(nextStep('exported', 'exported')).toBeNull();
    expect(nextStep('importing', 'exported')).toBeNull();
    expect(nextStep('exported', 'committed')).toBe('import');
    expect(nextStep('importing', 'committed')).toBe('import');
    expect(nextStep('imported', 'committed')).toBe('commit');
    expect(nextStep('committed', 'committed')).toBeNull();
    expect(nextStep('abandoned', 'committed')).toBeNull();
  });
});

describe('sameJson', () => {
  it('ignores key order, not array order or types', () => {
    expect(sameJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameJson(null, {})).toBe(false);
    expect(sameJson(null, null)).toBe(true);
  });
});

describe('receiptNeeded', () => {
  it('names the run the call names, unless it is the loaded one', () => {
    expect(receiptNeeded(run('exported'), runUnit)).toBeUndefined();
    expect(receiptNeeded(run('exported'), { ...runUnit, runId: 'r1' })).toBeUndefined();
    expect(receiptNeeded(run('exported'), { ...runUnit, runId: 'r2' })).toBe('r2');
    expect(receiptNeeded(undefined, { ...runUnit, runId: 'r2' })).toBe('r2');
    expect(receiptNeeded(run('exported'), { ...importUnit, runId: 'r1', sessionRunId: 'r3' })).toBe('r3');
  });
});

describe('decide: what an existing run state means', () => {
  it('starts fresh with no run state or a finished one; importUnit has nothing to import then', () => {
    expect(decide({}, same, runUnit)).toEqual({ kind: 'fresh' });
    expect(decide({ state: run('committed') }, same, runUnit)).toEqual({ kind: 'fresh' });
    expect(decide({ state: run('abandoned') }, movedElsewhere, runUnit)).toEqual({ kind: 'fresh' });
    expect(decide({}, same, importUnit)).toEqual({ kind: 'refuse', refusal: { why: 'nothing-exported' } });
  });

  it('resumes the pending run in every pending phase when nothing moved', () => {
    for (const p of PHASES.filter(isPending)) {
      const state = run(p);
      expect(decide({ state }, same, runUnit)).toEqual({ kind: 'resume', state });
    }
  });

  it('checkpoint moved: drops an export, supersedes an import, lands a run that committed as planned', () => {
    expect(decide({ state: run('exporting') }, movedElsewhere, runUnit)).toEqual({ kind: 'fresh' });
    for (const p of ['exported', 'importing'] as const) {
      expect(decide({ state: run(p) }, movedAsPlanned, runUnit)).toEqual({ kind: 'fresh', settle: 'supersede' });
    }
    expect(decide({ state: run('imported') }, movedAsPlanned, runUnit)).toEqual({ kind: 'fresh', settle: 'land' });
    expect(decide({ state: run('imported') }, movedElsewhere, runUnit)).toEqual({
      kind: 'fresh',
      settle: 'supersede',
    });
    // a run planned without a checkpoint lands when the entry moved to null
    const unplanned = run('imported', { plannedCheckpoint: undefined });
    expect(decide({ state: unplanned }, { version: 4, value: null }, runUnit)).toMatchObject({ settle: 'land' });
  });

  it('staging provider changed: drops an export, refuses anything past it', () => {
    const other = { ...runUnit, stagingProvider: 's3' };
    expect(decide({ state: run('exporting') }, same, other)).toEqual({ kind: 'fresh' });
    for (const p of ['exported', 'importing', 'imported'] as const) {
      const state = run(p);
      expect(decide({ state }, same, other)).toEqual({ kind: 'refuse', refusal: { why: 'other-staging' }, state });
    }
  });

  it('mode changed: drops an export, resumes anything past it as recorded', () => {
    const full = { ...runUnit, mode: 'full' as const };
    expect(decide({ state: run('exporting') }, same, full)).toEqual({ kind: 'fresh' });
    const state = run('importing');
    expect(decide({ state }, same, full)).toEqual({ kind: 'resume', state });
  });
});

describe('decide: a call that names a run', () => {
  const named = (runId: string, facts: CallFacts = runUnit): CallFacts => ({ ...facts, runId });

  it('resumes the pending run it names, or the pending run under another name when the name is new', () => {
    const state = run('exported');
    expect(decide({ state }, same, named('r1'))).toEqual({ kind: 'resume', state });
    expect(decide({ state }, same, named('r2'))).toEqual({ kind: 'resume', state });
    expect(decide({}, same, named('r2'))).toEqual({ kind: 'fresh' });
  });

  it('repeats the loaded run when it committed, or when it is landed now', () => {
    const done = run('committed');
    expect(decide({ state: done }, same, named('r1'))).toEqual({ kind: 'repeat', state: done });
    const landing = run('imported');
    expect(decide({ state: landing }, movedAsPlanned, named('r1'))).toEqual({
      kind: 'repeat',
      state: landing,
      settle: 'land',
    });
  });

  it('refuses the loaded run when it was abandoned, or is superseded now', () => {
    const gone = run('abandoned');
    expect(decide({ state: gone }, same, named('r1'))).toEqual({
      kind: 'refuse',
      refusal: { why: 'run-id-used', runId: 'r1', outcome: 'abandoned' },
      state: gone,
    });
    const stale = run('importing');
    expect(decide({ state: stale }, movedElsewhere, named('r1'))).toEqual({
      kind: 'refuse',
      refusal: { why: 'run-id-used', runId: 'r1', outcome: 'superseded' },
      state: stale,
      settle: 'supersede',
    });
  });

  it('starts the named run afresh when its own pending export was dropped', () => {
    expect(decide({ state: run('exporting') }, movedElsewhere, named('r1'))).toEqual({ kind: 'fresh' });
  });

  it('answers from the receipt of another run: its result if it committed, a refusal otherwise', () => {
    const receiptState = { runId: 'r0', phase: 'committed' };
    expect(
      decide({ state: run('exported'), receipt: { outcome: 'committed', state: receiptState } }, same, named('r0')),
    ).toEqual({ kind: 'repeat', state: receiptState });
    expect(decide({ receipt: { outcome: 'superseded', state: {} } }, same, named('r0'))).toEqual({
      kind: 'refuse',
      refusal: { why: 'run-id-used', runId: 'r0', outcome: 'superseded' },
    });
    // a run superseded on the way keeps its settle whatever the named run was
    expect(
      decide({ state: run('exported'), receipt: { outcome: 'abandoned', state: {} } }, movedElsewhere, named('r0')),
    ).toMatchObject({ kind: 'refuse', settle: 'supersede', refusal: { outcome: 'abandoned' } });
  });
});

describe('decide: refusing a resume', () => {
  it('importUnit handed the session of another run than the pending one', () => {
    const state = run('exported');
    expect(decide({ state }, same, { ...importUnit, sessionRunId: 'r7' })).toEqual({
      kind: 'refuse',
      refusal: { why: 'other-run', sessionRunId: 'r7' },
      state,
    });
    expect(decide({ state }, same, { ...importUnit, sessionRunId: 'r1' })).toEqual({ kind: 'resume', state });
  });

  it('importUnit while the pending run is still exporting', () => {
    const state = run('exporting');
    expect(decide({ state }, same, importUnit)).toEqual({
      kind: 'refuse',
      refusal: { why: 'still-exporting' },
      state,
    });
  });

  it('a call that imports with another disposition or primary key than recorded', () => {
    const state = run('importing', { disposition: 'merge', primaryKey: ['id'] });
    const refused = (differs: string[]) => ({ kind: 'refuse', refusal: { why: 'import-differs', differs }, state });
    expect(decide({ state }, same, { ...runUnit, disposition: 'append' })).toEqual(refused(['disposition']));
    expect(decide({ state }, same, { ...runUnit, primaryKey: ['id', 'at'] })).toEqual(refused(['primaryKey']));
    expect(decide({ state }, same, { ...importUnit, disposition: 'replace', primaryKey: [] })).toEqual(
      refused(['disposition', 'primaryKey']),
    );
    // the same values, omitted values, a call that does not import, a run that recorded nothing: resumed
    for (const call of [
      { ...runUnit, disposition: 'merge', primaryKey: ['id'] },
      runUnit,
      { ...exportUnit, disposition: 'append' },
    ]) {
      expect(decide({ state }, same, call)).toEqual({ kind: 'resume', state });
    }
    const unrecorded = run('importing');
    expect(decide({ state: unrecorded }, same, { ...runUnit, disposition: 'append', primaryKey: ['x'] })).toEqual({
      kind: 'resume',
      state: unrecorded,
    });
    // a recorded disposition without a key: any key asked for differs
    const noKey = run('exported', { disposition: 'append' });
    expect(decide({ state: noKey }, same, { ...runUnit, primaryKey: ['id'] })).toMatchObject({
      refusal: { differs: ['primaryKey'] },
    });
  });
});
