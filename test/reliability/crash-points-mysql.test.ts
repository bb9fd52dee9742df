/**
 * Crash harness with the MySQL sink — every named crash point, filesystem staging, `append` into a MariaDB table
 * without a primary key (a duplicate would show), then a resume killed as well.
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { useMySqlCrashSetup } from './crash-mysql-kit.js';
import { namedCrashRound, resumeCrashRound } from './crash-suite.js';
import { POINTS } from './workers/crash-worker-points.js';

const pg = usePostgres('rel_cp_mysql');
const s = useMySqlCrashSetup('crash-points-mysql-append', pg, 'append');

describe('crash at every named point — MySQL sink (MariaDB), append', () => {
  for (const point of POINTS.filter((p) => p !== 'resume')) {
    it(`a SIGKILL at ${point} loses and duplicates nothing`, () => namedCrashRound(s, point), 120_000);
  }
  it(
    'a SIGKILL of the process that resumes a crashed run loses and duplicates nothing',
    () => resumeCrashRound(s),
    180_000,
  );
});
