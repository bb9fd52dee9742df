import { describe, expect, it } from 'vitest';
import { openEndpoint, resolveEndpoint } from '../../../src/host/endpoints.js';
import { EndpointRegistry, IngestError } from '../../../src/index.js';
import { MemorySink, memorySinkDescriptor } from '../../../src/testing/index.js';

let refuse = false;
const registry = new EndpointRegistry().register(memorySinkDescriptor, () => {
  if (refuse) throw new Error('connection refused');
  return new MemorySink();
});

describe('endpoint resolution', () => {
  it('prefers resolveEndpoint over endpoints, and refuses an unknown id with config_invalid', async () => {
    const wiring = { registry, endpoints: { lake: { endpointId: 'memory', config: {} } } };
    await expect(resolveEndpoint(wiring, 'lake', 'sink')).resolves.toEqual({ endpointId: 'memory', config: {} });
    const resolver = { ...wiring, resolveEndpoint: (id: string) => ({ endpointId: `x-${id}`, config: null }) };
    await expect(resolveEndpoint(resolver, 'lake', 'sink')).resolves.toEqual({ endpointId: 'x-lake', config: null });
    const err = await resolveEndpoint(wiring, 'nope', 'source').catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    expect(err.details).toEqual({ endpointId: 'nope', role: 'source' });
  });

  it('creates through the registry; a factory failure becomes sink_failed naming the id, config errors pass', async () => {
    const wiring = { registry, endpoints: { lake: { endpointId: 'memory', config: {} } } };
    expect(await openEndpoint(wiring, 'lake', 'sink')).toBeInstanceOf(MemorySink);
    refuse = true;
    const failed = await openEndpoint(wiring, 'lake', 'sink').catch((e) => e);
    refuse = false;
    expect(IngestError.is(failed, 'sink_failed')).toBe(true);
    expect(failed.message).toBe('Cannot create sink endpoint "lake" (memory): connection refused');
    const unknown = await openEndpoint(wiring, 'lake', 'sink', { endpointId: 'postgres', config: {} }).catch((e) => e);
    expect(IngestError.is(unknown, 'config_invalid')).toBe(true);
  });
});
