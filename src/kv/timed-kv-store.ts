import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/**
 * `kv` with a time limit on every call (get, put, delete, each step of a list): a store that hangs — a stalled
 * database connection, a lock file nobody releases — fails the call with `timeout` (retryable) naming the operation
 * and key, instead of stalling a commit or a lease renewal for ever. The call itself is not cancelled (the
 * KvStore contract takes no signal): a put that lands after its timeout is caught by the next compare-and-set.
 * @internal
 */
export function withKvTimeout(kv: KvStore, timeoutMs: number): KvStore {
  if ((kv as { [TIMED]?: number })[TIMED] === timeoutMs) return kv;
  const timed: KvStore & { [TIMED]: number } = {
    [TIMED]: timeoutMs,
    get: <T extends Json>(key: KvKey) => limit(kv.get<T>(key), 'get', key, timeoutMs),
    put: <T extends Json>(key: KvKey, value: T, opts?: KvPutOptions) =>
      limit(kv.put<T>(key, value, opts), 'put', key, timeoutMs),
    delete: (key: KvKey, opts?: { expectedVersion?: number }) => limit(kv.delete(key, opts), 'delete', key, timeoutMs),
    list(prefix) {
      return {
        [Symbol.asyncIterator]() {
          const it = kv.list(prefix)[Symbol.asyncIterator]();
          const where = { ...prefix, key: prefix.keyPrefix ?? '' };
          return {
            next: () => limit(it.next(), 'list', where, timeoutMs) as Promise<IteratorResult<KvEntry>>,
            return: async (v?: unknown) => (it.return ? it.return(v) : { done: true as const, value: undefined }),
          };
        },
      };
    },
  };
  return timed;
}

const TIMED = Symbol('kvTimeoutMs');

function limit<T>(call: Promise<T>, op: string, key: KvKey, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new IngestError('timeout', `KvStore.${op} of ${JSON.stringify(key.key)} took longer than ${ms} ms`, {
            retryable: true,
            details: { op, namespace: key.namespace, scopeId: key.scopeId, key: key.key, timeoutMs: ms },
          }),
        ),
      ms,
    );
    timer.unref?.();
  });
  call.catch(() => {}); // settled after the timeout: nobody waits for it any more
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
