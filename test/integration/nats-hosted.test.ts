/**
 * The JetStream source through the hosts: the Temporal activities (MockActivityEnvironment) and the BullMQ worker (real
 * Redis) create it from `{ endpointId: 'nats.jetstream', config }` through the registry, like any other source, and
 * each run takes the messages after the checkpoint once.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createIngestionWorker, IngestionProducer } from '../../src/bullmq/index.js';
import { EndpointRegistry, MemoryKvStore, MemoryStagingProvider } from '../../src/index.js';
import { JetStreamSource, jetStreamDescriptor } from '../../src/nats/index.js';
import { createIngestionActivities } from '../../src/temporal/index.js';
import { MemorySink, memorySinkDescriptor } from '../../src/testing/index.js';
import { useNats } from '../helpers/nats.js';
import { REDIS_URL, randomQueue, waitUntil } from './workers/bullmq-kit.js';

const nats = useNats();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function wiring(stream: string, sink: MemorySink) {
  const registry = new EndpointRegistry()
    .register(jetStreamDescriptor, (config) => new JetStreamSource(config))
    .register(memorySinkDescriptor, () => sink);
  const endpoints = {
    events: { endpointId: 'nats.jetstream', config: { servers: '127.0.0.1:4222', stream, units: { ev: {} } } },
    lake: { endpointId: 'memory', config: {} },
  };
  return { registry, endpoints };
}

describe('JetStreamSource in the hosts', () => {
  it('the Temporal activity runs a stream unit; the next activity takes only the new messages', async () => {
    const stream = await nats.stream('tmp');
    await nats.publish(`${stream}.a`, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const sink = new MemorySink();
    const kv = new MemoryKvStore();
    const activities = createIngestionActivities({
      ...wiring(stream, sink),
      staging: new MemoryStagingProvider(),
      kv,
      heartbeatIntervalMs: 50,
    });
    const run = (activityId: string) =>
      new MockActivityEnvironment(
        {
          activityId,
          workflowExecution: { workflowId: 'wf', runId: `b7a7c0de-0000-4000-8000-00000000000${activityId.length}` },
          heartbeatTimeoutMs: 5000,
        } as never,
        { logger: new DefaultLogger('ERROR', () => {}) },
      ).run(activities.runIngestionUnit, { endpointId: 'events', unitId: 'ev', sinkId: 'lake' }) as Promise<{
        newCheckpoint: unknown;
      }>;
    expect((await run('a1')).newCheckpoint).toEqual({ stream, seq: 3 });
    await nats.publish(`${stream}.a`, [{ n: 4 }]);
    expect((await run('a22')).newCheckpoint).toEqual({ stream, seq: 4 });
    expect(sink.rows('ev').map((r) => r.n)).toEqual([1, 2, 3, 4]);
    expect(await firstCheckpoint(kv)).toEqual({ stream, seq: 4 });
  });

  it('the BullMQ worker runs a stream unit from a queued job', async () => {
    const stream = await nats.stream('bmq');
    await nats.publish(`${stream}.a`, [{ n: 1 }, { n: 2 }]);
    const sink = new MemorySink();
    const redis = new URL(REDIS_URL);
    const connection = { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null };
    const q = randomQueue('nats');
    const queue = new Queue(q.queue, { connection, prefix: q.prefix });
    const events = new QueueEvents(q.queue, { connection, prefix: q.prefix });
    await events.waitUntilReady();
    cleanups.push(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
      await events.close();
    });
    const w = createIngestionWorker({
      queueName: q.queue,
      prefix: q.prefix,
      connection,
      ...wiring(stream, sink),
      staging: new MemoryStagingProvider(),
      kv: new MemoryKvStore(),
      defaultSinkId: 'lake',
      lockDurationMs: 5000,
    });
    cleanups.push(() => w.close());
    const producer = new IngestionProducer({ queue });
    await producer.enqueueUnit({ endpointId: 'events', unitId: 'ev' });
    await waitUntil(() => sink.rows('ev').length === 2, 30_000, 'the job to load 2 rows');
    expect(sink.rows('ev').map((r) => [r.n, r.stream_seq])).toEqual([
      [1, 1n],
      [2, 2n],
    ]);
  });
});

/** The only checkpoint entry of a KvStore (whatever vendor the host chose for the key). */
async function firstCheckpoint(kv: MemoryKvStore) {
  for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default' }))
    if (!e.key.endsWith('::run') && !e.key.endsWith('::lease') && !e.key.includes('::run::')) return e.value;
  return undefined;
}
