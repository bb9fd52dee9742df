/**
 * Crash harness — every named crash point, filesystem staging, `append` (a target without a primary key, so a
 * duplicate would show). A child process runs `runUnit` and SIGKILLs itself at the point; processes run again until
 * one commits; the invariants hold after the kill and after the recovery.
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { chainedCrashRound, namedPointTests, useCrashSetup } from './crash-suite.js';

const pg = usePostgres('rel_cp_fs_append');
const s = useCrashSetup('crash-points-fs-append', pg, 'append', 'fs');

describe('crash at every named point — filesystem staging, append', () => {
  namedPointTests(s);
  it(
    'a SIGKILL before the plan is recorded, then one right after the resumed export emptied its session, does not wedge the unit',
    () => chainedCrashRound(s, ['state-exporting', 'session-destroyed']),
    180_000,
  );
});
