/**
 * Crash harness — a subset of the named crash points with S3 staging (the test S3 server), `append`
 * (every point under SOAK=1).
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { namedCrashRound, useCrashSetup } from './crash-suite.js';
import { SOAK } from './harness.js';
import { POINTS } from './workers/crash-worker-points.js';

const pg = usePostgres('rel_cp_s3');
const s = useCrashSetup('crash-points-s3', pg, 'append', 's3');
const points = SOAK ? POINTS.filter((p) => p !== 'resume') : (['sealed', 'copy', 'checkpoint-put'] as const);

describe('crash at named points — S3 staging, append', () => {
  for (const point of points) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
});
