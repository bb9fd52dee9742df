/**
 * `@nucleus/ingestion/http` — read JSON records from HTTP APIs with the platform `fetch`.
 * @packageDocumentation
 */
export {
  type HttpJsonConfig,
  type HttpPagination,
  type HttpUnitConfig,
  httpJsonConfigSchema,
} from './http-json-config.js';
export {
  type HttpCheckpoint,
  HttpJsonSource,
  type HttpJsonSourceOptions,
  httpJsonDescriptor,
  type SecretProvider,
} from './http-json-source.js';
