import { describe, expect, it } from 'vitest';
import type { IngestionHeartbeatDetails } from '../../../src/host/heartbeat.js';
import { runHostedUnit } from '../../../src/host/run-hosted-unit.js';
import { EndpointRegistry, MemoryKvStore, MemoryStagingProvider, type Row } from '../../../src/index.js';
import { MemorySink, MemorySource, memorySinkDescriptor, memorySourceDescriptor } from '../../../src/testing/index.js';

const ROWS: Row[] = Array.from({ length: 40 }, (_, i) => ({ id: i + 1 }));

function host() {
  const sink = new MemorySink();
  const closed: string[] = [];
  const registry = new EndpointRegistry()
    .register(memorySourceDescriptor, (config) => {
      const source = new MemorySource(config);
      return Object.assign(source, { close: async () => void closed.push('source') });
    })
    .register(memorySinkDescriptor, () => Object.assign(sink, { close: async () => void closed.push('sink') }));
  const beats: IngestionHeartbeatDetails[] = [];
  const options = {
    wiring: {
      registry,
      endpoints: {
        crm: { endpointId: 'memory', config: { units: { users: { rows: ROWS, cursorField: 'id' } } } },
        lake: { endpointId: 'memory', config: {} },
      },
    },
    staging: new MemoryStagingProvider(),
    kv: new MemoryKvStore(),
    unit: { vendor: 'memory', endpointId: 'crm', unitId: 'users', sinkId: 'lake' },
    runId: 'r1',
    heartbeat: { attempt: 1, intervalMs: 10_000, send: (d: IngestionHeartbeatDetails) => beats.push(d) },
  };
  return { sink, closed, beats, options };
}

describe('runHostedUnit', () => {
  it('export then import: heartbeats from starting to committed, every endpoint it opened closed', async () => {
    const h = host();
    const exported = await runHostedUnit('export', h.options);
    expect(h.closed).toEqual(['source']);
    const imported = await runHostedUnit('import', { ...h.options, sessionRef: exported.sessionRef });
    expect(imported).toMatchObject({ runId: 'r1', newCheckpoint: { cursor: 40 } });
    expect(h.sink.rows('users')).toEqual(ROWS);
    expect(h.closed).toEqual(['source', 'sink']);
    expect(h.beats[0]).toMatchObject({ runId: 'r1', phase: 'starting', attempt: 1 });
    expect(h.beats.at(-1)?.phase).toBe('committed');
  });

  it('closes the source when the sink cannot be resolved', async () => {
    const h = host();
    const err = await runHostedUnit('run', { ...h.options, unit: { ...h.options.unit, sinkId: 'gone' } }).catch(
      (e) => e,
    );
    expect(err.code).toBe('config_invalid');
    expect(h.closed).toEqual(['source']);
  });
});
