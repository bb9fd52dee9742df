/**
 * Crash harness — kills at random moments, `append`: 10 rounds (250 under SOAK=1; with the `merge` file, 20 and
 * 500), every third round also killing the first recovery process at a random moment.
 */
import { describeRandomCrashes } from './crash-suite.js';

describeRandomCrashes('append');
