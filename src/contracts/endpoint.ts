import type { z } from 'zod';
import type { RecordSchema } from './values.js';

/**
 * What an endpoint can do.
 * @public
 */
export type Capability = 'metadata.collect' | 'metadata.preview' | 'ingest.full' | 'ingest.incremental';

/**
 * Describes a connector: identity, role, capabilities and the zod schema of its config.
 * @public
 */
export interface EndpointDescriptor<Config = unknown> {
  /** `'postgres'`, `'http.json'`, `'object-store'`, `'cdm.jdbc'`, `'memory'`, … */
  id: string;
  role: 'source' | 'sink';
  /** `'jdbc'` | `'http'` | `'object-store'` | `'memory'` | … */
  family: string;
  title: string;
  version: string;
  capabilities: Capability[];
  /** Validated once, at the boundary; exported as JSON Schema by the registry. */
  config: z.ZodType<Config>;
}

/**
 * One dataset a source offers (a table, an API resource), as reported by `collectMetadata`.
 * @public
 */
export interface UnitMetadata {
  unitId: string;
  /** Human-readable name. */
  title?: string;
  /** `'table'`, `'view'`, `'resource'`, … */
  kind?: string;
  schema?: RecordSchema;
  /** Estimated row count, when the system knows it. */
  estimatedRows?: number;
  /** Cursor columns that make incremental reads possible. */
  cursorColumns?: string[];
  capabilities?: Capability[];
}
