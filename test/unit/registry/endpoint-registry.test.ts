import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type EndpointDescriptor, EndpointRegistry, IngestError } from '../../../src/index.js';
import { MemorySink, MemorySource, memorySinkDescriptor, memorySourceDescriptor } from '../../../src/testing/index.js';

const strict: EndpointDescriptor<{ url: string; port: number; tables: string[] }> = {
  id: 'strict',
  role: 'source',
  family: 'test',
  title: 'Strict',
  version: '1.0.0',
  capabilities: ['ingest.full'],
  config: z
    .object({
      url: z.string().url(),
      port: z.number().int().min(1).max(65535),
      tables: z.array(z.string().min(1)).min(1),
    })
    .strict(),
};

describe('EndpointRegistry', () => {
  const registry = new EndpointRegistry()
    .register(memorySourceDescriptor, (c) => new MemorySource(c))
    .register(memorySinkDescriptor, () => new MemorySink())
    .register(strict, () => new MemorySource({ units: {} }));

  it('creates endpoints from { endpointId, config } after validating the config', async () => {
    const source = await registry.createSource({
      endpointId: 'memory',
      config: { units: { a: { rows: [{ x: 1 }] } } },
    });
    expect(source.descriptor.role).toBe('source');
    const sink = await registry.createSink({ endpointId: 'memory', config: {} });
    expect(sink.descriptor.role).toBe('sink');
  });

  it('a bad config is config_invalid listing every issue with its path, and the factory is not called', async () => {
    let called = false;
    const r = new EndpointRegistry().register(strict, () => {
      called = true;
      return new MemorySource({ units: {} });
    });
    const err = await r
      .create({ endpointId: 'strict', config: { url: 'not a url', port: 0, tables: [''], extra: true } })
      .catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    const paths = (err.details.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(['(root)', 'port', 'tables.0', 'url']);
    expect(err.message).toContain('source "strict"');
    expect(called).toBe(false);
  });

  it('asks for the role when one id names a source and a sink, and names unknown ids', async () => {
    await expect(registry.create({ endpointId: 'memory', config: {} })).rejects.toThrow(/pass `role`/);
    const err = await registry.create({ endpointId: 'nope', config: {} }).catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    expect(err.message).toContain('Unknown endpoint "nope"');
  });

  it('refuses a second registration of the same id and role', () => {
    expect(() => registry.register(strict, () => new MemorySource({ units: {} }))).toThrow(/already registered/);
  });

  it('templates() gives each descriptor with its config as JSON Schema', () => {
    const t = registry.templates().find((x) => x.id === 'strict')!;
    expect(t).toMatchObject({ role: 'source', family: 'test', capabilities: ['ingest.full'] });
    expect(t.configSchema).toMatchObject({
      type: 'object',
      required: ['url', 'port', 'tables'],
      properties: { port: { type: 'integer', minimum: 1, maximum: 65535 }, tables: { type: 'array', minItems: 1 } },
      additionalProperties: false,
    });
    expect(JSON.parse(JSON.stringify(registry.templates()))).toHaveLength(3);
  });
});
