/**
 * Crash harness on the overlapped path (docs/decisions/0018-overlapped-import.md): the export and the import run at
 * once (`policy.overlap`), so a slice may be committed in the sink while later ones are still being staged. A child
 * process runs `runUnit` and SIGKILLs itself at a named point; processes run again until one commits; the
 * invariants hold after the kill and after the recovery — for `append` (a target without a primary key, so a
 * duplicate would show) and `merge`.
 */
import { describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { namedCrashRound, useCrashSetup } from './crash-suite.js';

/** The points of an overlapped run: its streaming phase, a slice staged or committed while others export, the end. */
const OVERLAP_POINTS = [
  'state-streaming',
  'slice-staged',
  'copy',
  'slice-committed',
  'sealed',
  'sink-returned',
  'state-imported',
  'checkpoint-put',
] as const;

const pg = usePostgres('rel_cp_overlap');
const append = useCrashSetup('crash-points-overlap-append', pg, 'append', 'fs', {
  env: () => ({ OVERLAP: '1', EXPORT_CONCURRENCY: '1' }),
});

describe('crash at every point of an overlapped run — filesystem staging, append', () => {
  for (const point of OVERLAP_POINTS) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(append, point), 120_000);
  }
  it('killed one process per point', () => {
    expect(append.figures.kills).toBe(OVERLAP_POINTS.length);
  });
});

const pgMerge = usePostgres('rel_cp_overlap_m');
const merge = useCrashSetup('crash-points-overlap-merge', pgMerge, 'merge', 'fs', {
  env: () => ({ OVERLAP: '1', EXPORT_CONCURRENCY: '2' }),
});

describe('crash at every point of an overlapped run — filesystem staging, merge', () => {
  for (const point of OVERLAP_POINTS) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(merge, point), 120_000);
  }
});
