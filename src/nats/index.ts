/**
 * `@nucleus/ingestion/nats` — read NATS JetStream streams, exactly once into the SQL sinks. Needs the optional
 * peers `@nats-io/jetstream` and `@nats-io/transport-node` (loaded on first use).
 * @packageDocumentation
 */
export { type JetStreamConfig, type JetStreamUnitConfig, jetStreamConfigSchema } from './jetstream-config.js';
export {
  type JetStreamCheckpoint,
  JetStreamSource,
  type JetStreamSourceOptions,
  jetStreamDescriptor,
} from './jetstream-source.js';
