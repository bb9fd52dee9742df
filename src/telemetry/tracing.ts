import {
  type Attributes,
  type Counter,
  type MeterProvider,
  metrics,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { IngestError } from '../errors/ingest-error.js';
import { redact } from '../errors/redact.js';

const SCOPE = '@nucleus/ingestion';

/**
 * Run `fn` inside an OpenTelemetry span (a no-op unless the host registered an SDK).
 * Errors mark the span failed — status message and recorded exception scrubbed of secrets, attributes
 * `ingestion.error.code` and `ingestion.error.retryable` for an IngestError — and are rethrown.
 * Spans nest (run → export → slice) when the host installed a context manager, as the Node SDK does.
 * @internal
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return trace.getTracer(SCOPE).startActiveSpan(name, { attributes }, async (span) => {
    try {
      const out = await fn(span);
      span.setStatus({ code: SpanStatusCode.OK });
      return out;
    } catch (err) {
      const message = redact(err instanceof Error ? err.message : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message });
      span.recordException({ name: err instanceof Error ? err.name : 'Error', message });
      if (IngestError.is(err)) {
        span.setAttribute('ingestion.error.code', err.code);
        span.setAttribute('ingestion.error.retryable', err.retryable);
      }
      throw err;
    } finally {
      span.end();
    }
  });
}

interface Counters {
  rows: Counter;
  bytes: Counter;
}

/** Counters per meter provider: a host that installs its SDK after the first run still gets its metrics. */
const countersByProvider = new WeakMap<MeterProvider, Counters>();

function getCounters(): Counters {
  const provider = metrics.getMeterProvider();
  let counters = countersByProvider.get(provider);
  if (!counters) {
    const meter = provider.getMeter(SCOPE);
    counters = {
      rows: meter.createCounter('ingestion.rows', { description: 'Rows moved, by direction (exported | imported)' }),
      bytes: meter.createCounter('ingestion.bytes', { description: 'Bytes staged', unit: 'By' }),
    };
    countersByProvider.set(provider, counters);
  }
  return counters;
}

/** Count rows exported or imported (counter `ingestion.rows`, attribute `ingestion.direction`). @internal */
export function recordRows(direction: 'exported' | 'imported', n: number, attributes: Attributes): void {
  if (n > 0) getCounters().rows.add(n, { ...attributes, 'ingestion.direction': direction });
}

/** Count bytes staged (counter `ingestion.bytes`). @internal */
export function recordBytes(n: number, attributes: Attributes): void {
  if (n > 0) getCounters().bytes.add(n, attributes);
}
