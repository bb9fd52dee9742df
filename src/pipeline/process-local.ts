import { randomUUID } from 'node:crypto';
import { RUN_PHASES } from './run-policy.js';
import type { RunState } from './run-state.js';

/** This process, as run states of process-local staging name it. @internal */
export const PROCESS_ID: string = randomUUID();

/**
 * How a call treats a loaded run state whose staging lived in another process's memory (ADR 0017): `drop` it when
 * nothing of it reached the sink, `supersede` it (retire its run id; the sink may know some of its slices) otherwise;
 * `undefined` when the run can resume here.
 * @internal
 */
export function lostProcessLocalRun(state: RunState | undefined): 'drop' | 'supersede' | undefined {
  if (!state?.stagingProcess || state.stagingProcess === PROCESS_ID) return undefined;
  const rule = RUN_PHASES[state.phase];
  if (!rule.pending) return undefined;
  return rule.inSink === 'nothing' ? 'drop' : 'supersede';
}
