/**
 * Crash harness with the pg-copy pass-through (PostgreSQL COPY text staged unchanged, fed to COPY unchanged): every
 * named crash point and a kill of the resuming process, filesystem staging, `append` (a target without a primary key,
 * so a duplicate would show). The invariants hold after each kill and after the recovery, exactly as on the row path.
 */
import { describe } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { namedPointTests, stagedCodecTest, useCrashSetup } from './crash-suite.js';

const pg = usePostgres('rel_cp_pass');
/** The worker stages through the `pg-copy` codec. */
const s = useCrashSetup('crash-points-pass-through', pg, 'append', 'fs', { env: () => ({ CODEC: 'pg-copy' }) });

describe('crash at every named point — pg-copy pass-through, filesystem staging, append', () => {
  namedPointTests(s);
  stagedCodecTest(s, 'pg-copy', '.pgcopy');
});
