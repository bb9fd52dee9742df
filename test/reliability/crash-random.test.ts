/**
 * Crash harness — kills at random moments: 20 rounds (500 under SOAK=1), alternating `append` and `merge`, every
 * third round also killing the first recovery process at a random moment.
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { randomCrashRound, useCrashSetup } from './crash-suite.js';
import { SOAK } from './harness.js';

const ROUNDS = SOAK ? 500 : 20;
const appendPg = usePostgres('rel_cr_append');
const mergePg = usePostgres('rel_cr_merge');
const append = useCrashSetup('crash-random-append', appendPg, 'append', 'fs');
const merge = useCrashSetup('crash-random-merge', mergePg, 'merge', 'fs');

/** A small seeded generator (mulberry32) so a failing round can be replayed with CRASH_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);

describe(`crash at random moments (${ROUNDS} rounds, seed ${seed})`, () => {
  const rnd = rng(seed);
  for (let i = 0; i < ROUNDS; i++) {
    it(
      `round ${i + 1}: a random SIGKILL${i % 3 === 0 ? ' and a SIGKILL during recovery' : ''} lose and duplicate nothing`,
      () => randomCrashRound(i % 2 === 0 ? append : merge, i + 1, rnd, i % 3 === 0),
      120_000,
    );
  }
});
