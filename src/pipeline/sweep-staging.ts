export { type SweepStagingOptions, sweepStaging } from './sweep.js';
