export {
  type PostgresCdcSourceConfig,
  type PostgresCdcSourceOptions,
  type PostgresCdcUnitConfig,
  postgresCdcSourceConfigSchema,
  postgresCdcSourceDescriptor,
} from './cdc-config.js';
export {
  type PostgresCdcCheckpoint,
  type PostgresCdcSlotStatus,
  PostgresCdcSource,
} from './cdc-source.js';
