/**
 * Crash harness — kills at random moments of overlapped runs (export and import at once, ADR 0018), `append` and
 * `merge`: 10 rounds each (250 under SOAK=1), every third round also killing the first recovery process.
 */
import { describeRandomCrashes } from './crash-suite.js';

describeRandomCrashes('append', { overlap: true });
describeRandomCrashes('merge', { overlap: true });
