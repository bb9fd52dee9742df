import type { IngestionContext } from '../contracts/context.js';
import type { ImportRequest, ImportResult, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { ReadRequest, SliceSpec, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { sleep } from '../util/abort.js';

/** What a fault throws. @defaultValue a retryable `source_failed` / `sink_failed` IngestError */
export type FaultError = Error | (() => Error);

/** Options of the fault wrappers. @public */
export interface FaultOptions {
  /** The error to throw. */
  error?: FaultError;
  /** How many times the fault fires before the endpoint behaves. @defaultValue 1 */
  times?: number;
}

/** A wrapped endpoint with a counter of the faults it injected. @public */
export type Faulty<E> = E & { readonly faultsInjected: number };

/** A plain object forwarding every method of `endpoint` (bound), so wrappers can override some. */
function delegate<E extends object>(endpoint: E): E {
  const out: Record<string, unknown> = { descriptor: (endpoint as { descriptor?: unknown }).descriptor };
  const seen = new Set<string>();
  for (let o: object | null = endpoint; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (seen.has(name) || name === 'constructor') continue;
      seen.add(name);
      const v = (endpoint as Record<string, unknown>)[name];
      if (typeof v === 'function') out[name] = (v as (...a: unknown[]) => unknown).bind(endpoint);
    }
  }
  return out as E;
}

function makeError(e: FaultError | undefined, fallback: () => Error): Error {
  if (!e) return fallback();
  return typeof e === 'function' ? e() : e;
}

/**
 * Wrap a source so that its `read()` fails when it reaches batch `n` (1-based), `times` times in all.
 * @example
 * ```ts
 * import { failAtBatch, MemorySource } from '@nucleus/ingestion/testing';
 * const flaky = failAtBatch(new MemorySource({ units }), 3);
 * ```
 * @public
 */
export function failAtBatch<C extends Json>(
  source: SourceEndpoint<C>,
  n: number,
  opts: FaultOptions = {},
): Faulty<SourceEndpoint<C>> {
  let left = opts.times ?? 1;
  let injected = 0;
  const wrapped = delegate(source) as SourceEndpoint<C> & { faultsInjected: number };
  Object.defineProperty(wrapped, 'faultsInjected', { get: () => injected });
  wrapped.read = (req: ReadRequest<C> & { slice?: SliceSpec }, ctx: IngestionContext) =>
    (async function* () {
      let i = 0;
      for await (const batch of source.read(req, ctx)) {
        i++;
        if (i === n && left > 0) {
          left--;
          injected++;
          throw makeError(
            opts.error,
            () => new IngestError('source_failed', `Injected source fault at batch ${n}`, { retryable: true }),
          );
        }
        yield batch;
      }
    })();
  return wrapped;
}

/**
 * Wrap an endpoint so that its next `read()` (source) or `import()` (sink) fails, `times` times in all.
 * For a sink, `afterSlices` lets the fault hit after that many slices were imported (a partial import).
 * @public
 */
export function failOnce<E extends SourceEndpoint<any> | SinkEndpoint>(
  endpoint: E,
  opts: FaultOptions & { afterSlices?: number } = {},
): Faulty<E> {
  let left = opts.times ?? 1;
  let injected = 0;
  const wrapped = delegate(endpoint) as E & { faultsInjected: number };
  Object.defineProperty(wrapped, 'faultsInjected', { get: () => injected });
  if ('import' in endpoint) {
    const sink = endpoint as SinkEndpoint;
    (wrapped as unknown as SinkEndpoint).import = async (
      req: ImportRequest,
      ctx: IngestionContext,
    ): Promise<ImportResult> => {
      if (left <= 0) return sink.import(req, ctx);
      left--;
      injected++;
      const err = () =>
        makeError(opts.error, () => new IngestError('sink_failed', 'Injected sink fault', { retryable: true }));
      if (opts.afterSlices === undefined) throw err();
      await sink.import({ ...req, slices: req.slices.slice(0, opts.afterSlices) }, ctx);
      throw err();
    };
  } else {
    const source = endpoint as SourceEndpoint<any>;
    (wrapped as unknown as SourceEndpoint<any>).read = (req, ctx) => {
      if (left <= 0) return source.read(req, ctx);
      left--;
      injected++;
      return (async function* (): AsyncGenerator<SourceBatch<any>> {
        throw makeError(
          opts.error,
          () => new IngestError('source_failed', 'Injected source fault', { retryable: true }),
        );
      })();
    };
  }
  return wrapped;
}

/**
 * Wrap a source so every batch (or a sink so every import) is delayed by `delayMs`; the delay honours the run's signal.
 * @public
 */
export function slow<E extends SourceEndpoint<any> | SinkEndpoint>(endpoint: E, delayMs: number): E {
  const wrapped = delegate(endpoint);
  if ('import' in endpoint) {
    const sink = endpoint as SinkEndpoint;
    (wrapped as unknown as SinkEndpoint).import = async (req, ctx) => {
      await sleep(delayMs, ctx.signal);
      return sink.import(req, ctx);
    };
  } else {
    const source = endpoint as SourceEndpoint<any>;
    (wrapped as unknown as SourceEndpoint<any>).read = (req, ctx) =>
      (async function* () {
        for await (const batch of source.read(req, ctx)) {
          await sleep(delayMs, ctx.signal);
          yield batch;
        }
      })();
  }
  return wrapped;
}
