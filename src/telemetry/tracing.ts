import { type Attributes, metrics, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { IngestError } from '../errors/ingest-error.js';

const SCOPE = '@nucleus/ingestion';

/**
 * Run `fn` inside an OpenTelemetry span (a no-op unless the host registered an SDK).
 * Errors mark the span failed with the IngestError code and are rethrown.
 * @internal
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return trace.getTracer(SCOPE).startActiveSpan(name, { attributes }, async (span) => {
    try {
      const out = await fn(span);
      span.setStatus({ code: SpanStatusCode.OK });
      return out;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      if (IngestError.is(err)) span.setAttribute('ingestion.error.code', err.code);
      throw err;
    } finally {
      span.end();
    }
  });
}

let counters:
  | { rows: ReturnType<ReturnType<typeof metrics.getMeter>['createCounter']>; bytes: ReturnType<ReturnType<typeof metrics.getMeter>['createCounter']> }
  | undefined;

function getCounters() {
  if (!counters) {
    const meter = metrics.getMeter(SCOPE);
    counters = {
      rows: meter.createCounter('ingestion.rows', { description: 'Rows moved, by direction (exported | imported)' }),
      bytes: meter.createCounter('ingestion.bytes', { description: 'Bytes staged', unit: 'By' }),
    };
  }
  return counters;
}

/** Count rows exported or imported. @internal */
export function recordRows(direction: 'exported' | 'imported', n: number, attributes: Attributes): void {
  if (n > 0) getCounters().rows.add(n, { ...attributes, 'ingestion.direction': direction });
}

/** Count bytes staged. @internal */
export function recordBytes(n: number, attributes: Attributes): void {
  if (n > 0) getCounters().bytes.add(n, attributes);
}
