/**
 * `@nucleus/ingestion/arrow` — the Arrow IPC stream codec. Loads `apache-arrow` (an optional peer dependency).
 * @packageDocumentation
 */
export { type ArrowCodecOptions, arrowCodec } from './arrow-codec.js';
