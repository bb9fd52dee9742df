/**
 * Crash harness — kills at random moments, `merge`: 10 rounds (250 under SOAK=1; with the `append` file, 20 and 500),
 * every third round also killing the first recovery process at a random moment.
 */
import { describe, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { randomCrashRound, useCrashSetup } from './crash-suite.js';
import { SOAK } from './harness.js';

const ROUNDS = SOAK ? 250 : 10;
const pg = usePostgres('rel_cr_merge');
const setup = useCrashSetup('crash-random-merge', pg, 'merge', 'fs');

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

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000) + 1;

describe(`crash at random moments, merge (${ROUNDS} rounds, seed ${seed})`, () => {
  const rnd = rng(seed);
  for (let i = 0; i < ROUNDS; i++) {
    it(
      `round ${i + 1}: a random SIGKILL${i % 3 === 0 ? ' and a SIGKILL during recovery' : ''} lose and duplicate nothing`,
      () => randomCrashRound(setup, i + 1, rnd, i % 3 === 0),
      120_000,
    );
  }
});
