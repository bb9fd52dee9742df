export { sweepStaging, type SweepStagingOptions } from './sweep.js';
