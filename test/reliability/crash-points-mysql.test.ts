/**
 * Crash harness with the MySQL sink — every named crash point, filesystem staging, `append` into a MariaDB table
 * without a primary key (a duplicate would show), then a resume killed as well.
 */
import { describe } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { useMySqlCrashSetup } from './crash-mysql-kit.js';
import { namedPointTests } from './crash-suite.js';

const pg = usePostgres('rel_cp_mysql');
const s = useMySqlCrashSetup('crash-points-mysql-append', pg, 'append');

describe('crash at every named point — MySQL sink (MariaDB), append', () => {
  namedPointTests(s);
});
