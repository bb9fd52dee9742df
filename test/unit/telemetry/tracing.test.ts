import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Context,
  type ContextManager,
  context,
  type MeterProvider,
  metrics,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryKvStore, MemoryStagingProvider, type Row, registerSecret, runUnit } from '../../../src/index.js';
import { failOnce, MemorySink, MemorySource } from '../../../src/testing/index.js';

/** What the Node SDK installs: the active span follows async calls. */
class AsyncLocalStorageContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#als.disable();
    return this;
  }
}

/** A minimal MeterProvider that records counter additions (the metrics SDK is not a dependency). */
function recordingMeterProvider() {
  const adds: Array<{ name: string; value: number; attributes: Record<string, unknown> }> = [];
  const provider = {
    getMeter: () =>
      ({
        createCounter: (name: string) => ({
          add: (value: number, attributes: Record<string, unknown> = {}) => adds.push({ name, value, attributes }),
        }),
      }) as never,
  } as MeterProvider;
  return { provider, adds };
}

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const meter = recordingMeterProvider();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager());
  trace.setGlobalTracerProvider(provider);
  metrics.setGlobalMeterProvider(meter.provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  metrics.disable();
});
beforeEach(() => {
  exporter.reset();
  meter.adds.length = 0;
});

const ROWS: Row[] = Array.from({ length: 300 }, (_, i) => ({ id: i + 1, name: `n${i + 1}` }));

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (s: ReadableSpan) =>
  (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId;

describe('OpenTelemetry spans and counters', () => {
  it('records a span per run, phase and slice with unit, run and row-count attributes, nested run → phase → slice', async () => {
    const sink = new MemorySink();
    const result = await runUnit({
      source: new MemorySource({ units: { users: { rows: ROWS, cursorField: 'id', batchSize: 40, planSlices: 3 } } }),
      sink,
      staging: new MemoryStagingProvider(),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'crm', unitId: 'users', sinkId: 'lake' },
    });
    const spans = exporter.getFinishedSpans();
    const [run] = byName(spans, 'ingestion.run');
    const [exp] = byName(spans, 'ingestion.export');
    const [imp] = byName(spans, 'ingestion.import');
    const [commit] = byName(spans, 'ingestion.commit');
    const slices = byName(spans, 'ingestion.slice');
    expect(run && exp && imp && commit).toBeTruthy();
    expect(slices).toHaveLength(3);

    for (const s of [run, exp, imp, commit, ...slices]) {
      expect(s.attributes['ingestion.unit_id']).toBe('users');
      expect(s.attributes['ingestion.endpoint_id']).toBe('crm');
      expect(s.attributes['ingestion.run_id']).toBe(result.runId);
      expect(s.status.code).toBe(SpanStatusCode.OK);
      expect(s.spanContext().traceId).toBe(run.spanContext().traceId);
    }
    expect(exp.attributes['ingestion.rows']).toBe(300);
    expect(imp.attributes['ingestion.rows']).toBe(300);
    expect(slices.map((s) => s.attributes['ingestion.slice']).sort()).toEqual([0, 1, 2]);
    expect(slices.reduce((n, s) => n + Number(s.attributes['ingestion.rows']), 0)).toBe(300);

    expect(parentOf(run)).toBeUndefined();
    for (const s of [exp, imp, commit]) expect(parentOf(s)).toBe(run.spanContext().spanId);
    for (const s of slices) expect(parentOf(s)).toBe(exp.spanContext().spanId);

    const rows = meter.adds.filter((a) => a.name === 'ingestion.rows');
    const sum = (dir: string) =>
      rows.filter((a) => a.attributes['ingestion.direction'] === dir).reduce((n, a) => n + a.value, 0);
    expect(sum('exported')).toBe(300);
    expect(sum('imported')).toBe(300);
    expect(rows.every((a) => a.attributes['ingestion.unit_id'] === 'users')).toBe(true);
  });

  it('marks the run and phase spans failed with the error code, never with a secret', async () => {
    const secret = 'hunter2-very-secret';
    registerSecret(secret);
    const sink = failOnce(new MemorySink(), { error: new Error(`connection refused for password ${secret}`) });
    const err = await runUnit({
      source: new MemorySource({ units: { users: { rows: ROWS } } }),
      sink,
      staging: new MemoryStagingProvider(),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'crm', unitId: 'users', sinkId: 'lake' },
      policy: { retry: { maxAttempts: 1 } },
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('sink_failed');
    const spans = exporter.getFinishedSpans();
    const [run] = byName(spans, 'ingestion.run');
    const [imp] = byName(spans, 'ingestion.import');
    for (const s of [run, imp]) {
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
      expect(s.attributes['ingestion.error.code']).toBe('sink_failed');
      expect(JSON.stringify({ status: s.status, events: s.events, attributes: s.attributes })).not.toContain(secret);
    }
    expect(byName(spans, 'ingestion.commit')).toHaveLength(0);
  });
});

describe('logger option', () => {
  it('accepts a console-like logger: (message, fields)', async () => {
    const calls: unknown[][] = [];
    const consoleLike = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (...args: unknown[]) => calls.push(args),
    };
    await runUnit({ ...failingOptions(), logger: consoleLike }).catch(() => {});
    const [message, fields] = calls.find((c) => typeof c[0] === 'string' && /failed/.test(c[0] as string)) ?? [];
    expect(message).toMatch(/run failed/);
    expect(fields).toMatchObject({ code: 'sink_failed' });
  });

  it('accepts a pino-like logger (with child): (fields, message)', async () => {
    const calls: unknown[][] = [];
    const pinoLike = {
      child: () => pinoLike,
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (...args: unknown[]) => calls.push(args),
    };
    await runUnit({ ...failingOptions(), logger: pinoLike as never }).catch(() => {});
    const call = calls.find((c) => typeof c[1] === 'string' && /run failed/.test(c[1] as string));
    expect(call?.[0]).toMatchObject({ code: 'sink_failed' });
  });
});

/** Options of a run whose sink fails once (no retry), so the pipeline logs `run failed`. */
function failingOptions() {
  return {
    source: new MemorySource({ units: { users: { rows: ROWS } } }),
    sink: failOnce(new MemorySink()),
    staging: new MemoryStagingProvider(),
    kv: new MemoryKvStore(),
    unit: { endpointId: 'crm', unitId: 'users' },
    policy: { retry: { maxAttempts: 1 } },
  };
}
