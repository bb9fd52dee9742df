/**
 * Redaction masks secrets only: config fields declared secret and values registered as secrets. Ordinary data whose
 * key merely looks secret-ish (`nextToken`, `passed`, `token_count`, `password_policy`) is kept in events,
 * checkpoints, previews, log fields, error details and template JSON Schemas.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { redactDeep } from '../../../src/errors/redact.js';
import {
  type EndpointDescriptor,
  EndpointRegistry,
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  redact,
  registerSecret,
  runUnit,
  type SourceBatch,
  type SourceEndpoint,
} from '../../../src/index.js';
import { MemorySink } from '../../../src/testing/index.js';

type PageCheckpoint = { nextToken: string };

/** A paginated API stand-in: its checkpoint is a page token, its rows have secret-looking column names. */
class PagedSource implements SourceEndpoint<PageCheckpoint> {
  readonly descriptor: EndpointDescriptor = {
    id: 'paged',
    role: 'source',
    family: 'test',
    title: 'Paged',
    version: '1.0.0',
    capabilities: ['ingest.full', 'ingest.incremental', 'metadata.preview'],
    config: z.object({}),
  };
  readonly rows = [
    { id: 1, passed: true, token_count: 12, password_policy: 'strict', secret_santa: 'Ada', api_key_id: 'k-1' },
  ];
  async preview() {
    return { rows: this.rows };
  }
  async *read(): AsyncIterable<SourceBatch<PageCheckpoint>> {
    yield { rows: this.rows, checkpoint: { nextToken: 'page-2' } };
  }
}

describe('redaction masks secrets, not data', () => {
  it('events and the committed checkpoint keep `{ nextToken: "page-2" }` and secret-looking columns', async () => {
    const events: IngestionEvent[] = [];
    const logged: unknown[] = [];
    const sink = new MemorySink();
    const kv = new MemoryKvStore();
    const result = await runUnit({
      source: new PagedSource(),
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'paged', unitId: 'things' },
      mode: 'incremental',
      onEvent: (e) => events.push(e),
      logger: {
        debug: (...a: unknown[]) => logged.push(a),
        info: (...a: unknown[]) => logged.push(a),
        warn: (...a: unknown[]) => logged.push(a),
        error: (...a: unknown[]) => logged.push(a),
      },
    });
    expect(result.newCheckpoint).toEqual({ nextToken: 'page-2' });
    const committed = events.find((e) => e.type === 'checkpoint.committed') as { checkpoint?: unknown } | undefined;
    expect(committed).toBeDefined();
    expect(JSON.stringify(committed)).toContain('"nextToken":"page-2"');
    const text = JSON.stringify(events) + JSON.stringify(logged);
    expect(text).not.toContain('***');
    expect(sink.rows('things')).toEqual(new PagedSource().rows);
  });

  it('redactDeep keeps every value under a secret-looking key, masks registered secrets and URL passwords', () => {
    const secret = `S3cret-${randomBytes(6).toString('hex')}`;
    registerSecret(secret);
    const data = {
      nextToken: 'page-2',
      passed: true,
      token_count: 12,
      password_policy: 'strict',
      authorization_mode: 'none',
      rows: [{ credential_type: 'oauth', note: `uses ${secret} inside` }],
      url: 'postgres://app:pw-in-url@db:5432/x',
    };
    expect(redactDeep(data)).toEqual({
      ...data,
      rows: [{ credential_type: 'oauth', note: 'uses *** inside' }],
      url: 'postgres://app:***@db:5432/x',
    });
    // error details are data too
    const err = new IngestError('source_failed', 'boom', { details: { nextToken: 'page-3', token: secret } });
    expect(err.details).toEqual({ nextToken: 'page-3', token: '***' });
    // free text (messages) is still scrubbed of credential-looking pairs
    expect(redact('login failed: password=hunter22 for user')).toBe('login failed: password=*** for user');
  });

  it('templates keep their JSON Schemas whole; a field declared secret (writeOnly) is registered on create', async () => {
    const descriptor: EndpointDescriptor<{ password: string; token_count: number; host: string }> = {
      id: 'with-secret',
      role: 'source',
      family: 'test',
      title: 'With a secret',
      version: '1.0.0',
      capabilities: ['ingest.full'],
      config: z.object({
        host: z.string(),
        password: z.string().meta({ writeOnly: true }),
        token_count: z.number(),
      }),
    };
    const registry = new EndpointRegistry().register(descriptor, () => new PagedSource());
    const [template] = registry.templates();
    expect(template.configSchema.properties).toEqual({
      host: { type: 'string' },
      password: { type: 'string', writeOnly: true },
      token_count: { type: 'number' },
    });
    const password = `pw-${randomBytes(6).toString('hex')}`;
    await registry.createSource({
      endpointId: 'with-secret',
      config: { host: 'db.internal', password, token_count: 3 },
    });
    expect(redact(`could not log in with ${password}`)).toBe('could not log in with ***');
    expect(redactDeep({ host: 'db.internal', token_count: 3 })).toEqual({ host: 'db.internal', token_count: 3 });
  });

  it('PostgreSQL connection strings are declared secret in the templates', async () => {
    const { PostgresSink, PostgresSource } = await import('../../../src/postgres/index.js');
    const registry = new EndpointRegistry()
      .register(new PostgresSource({ pool: fakePool() }).descriptor, () => new PagedSource())
      .register(new PostgresSink({ pool: fakePool() }).descriptor, () => new MemorySink());
    for (const t of registry.templates()) {
      const props = t.configSchema.properties as Record<string, { writeOnly?: boolean }>;
      expect(props.connectionString?.writeOnly, `${t.role} ${t.id}`).toBe(true);
    }
  });
});

function fakePool() {
  // never used for I/O: the descriptor is all this test reads
  return { connect: async () => ({}) as never, query: async () => ({}) as never, end: async () => {} };
}
