/**
 * Crash harness with the MySQL sink — kills at random moments (every third round also kills the first recovery
 * process), `append` (no primary key) and `merge`: 6 rounds each, 100 under SOAK=1. Replay with CRASH_SEED.
 */
import { describe, it } from 'vitest';
import { seededRandom } from '../helpers/fault-proxy.js';
import { usePostgres } from '../helpers/pg.js';
import { useMySqlCrashSetup } from './crash-mysql-kit.js';
import { randomCrashRound } from './crash-suite.js';
import { SOAK } from './harness.js';

const rounds = SOAK ? 100 : 6;
for (const disposition of ['append', 'merge'] as const) {
  const pg = usePostgres(`rel_crm_${disposition}`);
  const s = useMySqlCrashSetup(`crash-random-mysql-${disposition}`, pg, disposition, { PACE_MS: '300' });
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000) + (disposition === 'merge' ? 1 : 0);
  describe(`MySQL sink: crash at random moments, ${disposition} (${rounds} rounds, seed ${seed})`, () => {
    const rnd = seededRandom(seed);
    for (let i = 0; i < rounds; i++) {
      const alsoRecovery = i % 3 === 0;
      it(
        `round ${i + 1}: a random SIGKILL${alsoRecovery ? ' and a SIGKILL during recovery' : ''} lose and duplicate nothing`,
        () => randomCrashRound(s, i + 1, rnd, alsoRecovery),
        120_000,
      );
    }
  });
}
