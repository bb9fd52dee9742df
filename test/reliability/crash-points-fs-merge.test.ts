/**
 * Crash harness — named crash points around the sink, filesystem staging, `merge` (every point under SOAK=1).
 * The ledger check (ledger rows = target rows) catches a row merged twice, which the primary key would hide.
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { namedCrashRound, resumeCrashRound, useCrashSetup } from './crash-suite.js';
import { SOAK } from './harness.js';
import { POINTS } from './workers/crash-worker-points.js';

const pg = usePostgres('rel_cp_fs_merge');
const s = useCrashSetup('crash-points-fs-merge', pg, 'merge', 'fs');
const points = SOAK ? POINTS.filter((p) => p !== 'resume') : (['copy', 'slice-committed', 'checkpoint-put'] as const);

describe('crash at named points — filesystem staging, merge', () => {
  for (const point of points) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
  it(
    'a SIGKILL of the process that resumes a crashed run loses and duplicates nothing',
    () => resumeCrashRound(s),
    180_000,
  );
});
