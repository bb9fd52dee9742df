import { IngestError } from '../errors/ingest-error.js';

/** Throw `aborted` when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'Operation'): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** The `aborted` error for a signal (keeps an IngestError reason as is). */
export function abortError(signal: AbortSignal | undefined, what = 'Operation'): IngestError {
  const reason = signal?.reason;
  if (IngestError.is(reason)) return reason;
  return new IngestError('aborted', `${what} was aborted`, { cause: reason instanceof Error ? reason : undefined });
}

/** Resolve after `ms`, or reject with `aborted` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Race `promise` against `signal`: rejects with `aborted` when the signal fires first. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what?: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Iterate `source`, stopping within one item when `signal` aborts — even if the source itself ignores the signal
 * (the pending `next()` is abandoned and the iterator is closed in the background).
 */
export async function* abortable<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal | undefined,
  what?: string,
): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    while (true) {
      throwIfAborted(signal, what);
      const next = await raceAbort(it.next(), signal, what);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished && it.return) {
      // Do not wait for a source that ignores cancellation.
      Promise.resolve()
        .then(() => it.return?.())
        .catch(() => {});
    }
  }
}
