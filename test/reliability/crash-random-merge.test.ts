/**
 * Crash harness — kills at random moments, `merge`: 10 rounds (250 under SOAK=1; with the `append` file, 20 and
 * 500), every third round also killing the first recovery process at a random moment.
 */
import { describeRandomCrashes } from './crash-suite.js';

describeRandomCrashes('merge');
