import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { registerSecret } from '../errors/redact.js';

/** Builds an endpoint from its validated config. @public */
export type EndpointFactory<Config, E extends SourceEndpoint<any> | SinkEndpoint> = (config: Config) => E | Promise<E>;

const schemas = new WeakMap<EndpointDescriptor<any>, JsonSchema>();

type JsonSchema = Record<string, unknown>;

/** The descriptor's config as JSON Schema (draft 2020-12), computed once per descriptor. */
function configJsonSchema(d: EndpointDescriptor<any>): JsonSchema {
  let schema = schemas.get(d);
  if (!schema) {
    schema = z.toJSONSchema(d.config, { unrepresentable: 'any', io: 'input' }) as JsonSchema;
    schemas.set(d, schema);
  }
  // A copy: callers may mutate what `templates()` returns.
  return structuredClone(schema);
}

/**
 * Register the values of config fields declared secret — `writeOnly: true` in their JSON Schema, i.e.
 * `.meta({ writeOnly: true })` on the zod field — so they are masked wherever the library reports anything.
 */
function registerDeclaredSecrets(root: JsonSchema, config: unknown): void {
  const defs = (root.$defs ?? {}) as Record<string, JsonSchema>;
  const walk = (schema: JsonSchema | undefined, value: unknown, depth: number): void => {
    if (!schema || value === undefined || value === null || depth > 32) return;
    const ref = typeof schema.$ref === 'string' ? /^#\/\$defs\/(.+)$/.exec(schema.$ref) : null;
    if (ref) walk(defs[ref[1]], value, depth + 1);
    if (schema.writeOnly === true && typeof value === 'string') registerSecret(value);
    for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
      for (const sub of (schema[k] as JsonSchema[] | undefined) ?? []) walk(sub, value, depth + 1);
    }
    if (Array.isArray(value)) {
      for (const v of value) walk(schema.items as JsonSchema | undefined, v, depth + 1);
    } else if (typeof value === 'object') {
      const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const extra =
        typeof schema.additionalProperties === 'object' ? (schema.additionalProperties as JsonSchema) : undefined;
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        walk(Object.hasOwn(props, k) ? props[k] : extra, v, depth + 1);
      }
    }
  };
  walk(root, config, 0);
}

/** A descriptor with its config as JSON Schema — what a UI renders a form from (`metadataEndpointTemplates`). @public */
export interface EndpointTemplate {
  id: string;
  role: 'source' | 'sink';
  family: string;
  title: string;
  version: string;
  capabilities: EndpointDescriptor['capabilities'];
  /** JSON Schema (draft 2020-12) of the config. Fields declared secret carry `writeOnly: true`. */
  configSchema: Record<string, unknown>;
}

/** What to create: the descriptor id, its config, and the role when one id names a source and a sink. @public */
export interface EndpointRequest {
  endpointId: string;
  config: unknown;
  role?: 'source' | 'sink';
}

interface Registration {
  descriptor: EndpointDescriptor<any>;
  factory: EndpointFactory<any, any>;
}

/**
 * Registry of connector factories: create endpoints from `{ endpointId, config }` with the config validated
 * by the descriptor's zod schema, and list templates with their config as JSON Schema.
 *
 * A config field declared secret (`.meta({ writeOnly: true })` on its zod schema, `writeOnly: true` in the template)
 * has its value registered with `registerSecret` when an endpoint is created, so it is masked in every error, log
 * line and event. Nothing else is masked: values are data.
 *
 * @example
 * ```ts
 * import { EndpointRegistry } from '@nucleus/ingestion';
 * import { memorySourceDescriptor, MemorySource } from '@nucleus/ingestion/testing';
 *
 * const registry = new EndpointRegistry().register(memorySourceDescriptor, (config) => new MemorySource(config));
 * const source = await registry.createSource({ endpointId: 'memory', config: { units: { users: { rows: [] } } } });
 * ```
 * @public
 */
export class EndpointRegistry {
  readonly #entries = new Map<string, Registration>();

  /**
   * Register a factory under its descriptor's id and role.
   * @throws IngestError `config_invalid` when that id and role are taken
   */
  register<C>(
    descriptor: EndpointDescriptor<C>,
    factory: EndpointFactory<C, SourceEndpoint<any> | SinkEndpoint>,
  ): this {
    const key = `${descriptor.role}:${descriptor.id}`;
    if (this.#entries.has(key)) {
      throw new IngestError('config_invalid', `Endpoint ${descriptor.role} "${descriptor.id}" is already registered`);
    }
    this.#entries.set(key, { descriptor, factory });
    return this;
  }

  /** Whether an endpoint id (optionally of one role) is registered. */
  has(endpointId: string, role?: 'source' | 'sink'): boolean {
    return role
      ? this.#entries.has(`${role}:${endpointId}`)
      : this.#entries.has(`source:${endpointId}`) || this.#entries.has(`sink:${endpointId}`);
  }

  /** Registered descriptors. */
  descriptors(): EndpointDescriptor[] {
    return [...this.#entries.values()].map((r) => r.descriptor);
  }

  /**
   * Validate `config` with the descriptor's schema and build the endpoint.
   * @throws IngestError `config_invalid` listing every issue with its path, or naming an unknown id
   */
  async create(req: EndpointRequest): Promise<SourceEndpoint<any> | SinkEndpoint> {
    const reg = this.#find(req);
    const parsed = reg.descriptor.config.safeParse(req.config);
    if (!parsed.success) {
      throw configInvalid(`Invalid config for ${reg.descriptor.role} "${reg.descriptor.id}"`, parsed.error.issues);
    }
    registerDeclaredSecrets(configJsonSchema(reg.descriptor), parsed.data);
    return reg.factory(parsed.data);
  }

  /** {@link EndpointRegistry.create} for a source. */
  async createSource(req: Omit<EndpointRequest, 'role'>): Promise<SourceEndpoint<any>> {
    return (await this.create({ ...req, role: 'source' })) as SourceEndpoint<any>;
  }

  /** {@link EndpointRegistry.create} for a sink. */
  async createSink(req: Omit<EndpointRequest, 'role'>): Promise<SinkEndpoint> {
    return (await this.create({ ...req, role: 'sink' })) as SinkEndpoint;
  }

  /** Every descriptor with its config as JSON Schema. */
  templates(): EndpointTemplate[] {
    return [...this.#entries.values()].map(({ descriptor: d }) => ({
      id: d.id,
      role: d.role,
      family: d.family,
      title: d.title,
      version: d.version,
      capabilities: [...d.capabilities],
      configSchema: configJsonSchema(d),
    }));
  }

  #find(req: EndpointRequest): Registration {
    if (!req || typeof req.endpointId !== 'string') {
      throw new IngestError('config_invalid', 'Expected `endpointId` to be a string');
    }
    if (req.role) {
      const reg = this.#entries.get(`${req.role}:${req.endpointId}`);
      if (reg) return reg;
    } else {
      const both = ['source', 'sink']
        .map((r) => this.#entries.get(`${r}:${req.endpointId}`))
        .filter((r) => r !== undefined);
      if (both.length === 1) return both[0];
      if (both.length === 2) {
        throw new IngestError(
          'config_invalid',
          `Endpoint "${req.endpointId}" exists as a source and a sink; pass \`role\``,
        );
      }
    }
    const known = [...this.#entries.keys()].join(', ') || 'none';
    throw new IngestError(
      'config_invalid',
      `Unknown endpoint "${req.endpointId}"${req.role ? ` (${req.role})` : ''}; registered: ${known}`,
    );
  }
}
