/**
 * Crash harness with Arrow staging between PostgreSQL endpoints — the transcoded byte paths (COPY text → Arrow
 * record batches on export, Arrow → COPY text on import, no row objects): every named crash point and a kill of the
 * resuming process, filesystem staging, `merge` (through the sink's temporary table). The invariants hold after each
 * kill and after the recovery, exactly as on the row path.
 */
import { describe } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { namedPointTests, stagedCodecTest, useCrashSetup } from './crash-suite.js';

const pg = usePostgres('rel_cp_arrow');
/** The worker stages through the `arrow` codec. */
const s = useCrashSetup('crash-points-arrow', pg, 'merge', 'fs', { env: () => ({ CODEC: 'arrow' }) });

describe('crash at every named point — Arrow staging transcoded, filesystem staging, merge', () => {
  namedPointTests(s);
  stagedCodecTest(s, 'arrow', '.arrows');
});
