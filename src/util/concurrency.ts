/** Options of {@link runBounded}. @internal */
export interface BoundedOptions<W> {
  /** Once aborted no item is claimed any more; the items in flight finish, and no error is thrown for it. */
  signal?: AbortSignal;
  /** What the first worker holds (the caller's: it is never released here). */
  first?: W;
  /**
   * Ask for what each further worker holds (a connection). Never awaited: a worker starts when its resource arrives
   * and items are left; one that arrives when the work is over or has failed is released at once, and a failure to
   * get one is ignored (the workers already running carry on). Without it, every worker starts at once with `first`.
   */
  more?: () => Promise<W>;
  /** Give back what `more` gave, `healthy` false when an item failed on it. */
  release?: (worker: W, healthy: boolean) => void;
}

/**
 * Run `fn` on every item with at most `limit` at once, items claimed in order. The first failure stops new items from
 * being claimed; the items in flight finish, then the first error is rethrown. `items` may be an async iterable
 * (items arriving while others run, e.g. slices as they are staged): the workers pull from it one at a time, and an
 * error it throws counts as the first failure.
 * @internal
 */
export async function runBounded<T, W = undefined>(
  items: readonly T[] | AsyncIterable<T>,
  limit: number,
  fn: (item: T, worker: W) => Promise<void>,
  options: BoundedOptions<W> = {},
): Promise<void> {
  const { signal, first, more, release } = options;
  const take = claimer(items);
  let failed: { err: unknown } | undefined;
  let settled = false;
  const open = () => !failed && !signal?.aborted && !take.exhausted();
  const work = async (w: W, own: boolean) => {
    let healthy = true;
    try {
      while (open()) {
        let claimed: { item: T } | undefined;
        try {
          claimed = await take.next();
        } catch (err) {
          failed ??= { err };
          break;
        }
        if (!claimed) break;
        try {
          await fn(claimed.item, w);
        } catch (err) {
          healthy = false;
          failed ??= { err };
        }
      }
    } finally {
      if (own) release?.(w, healthy);
    }
  };
  const n = Math.max(1, Math.min(limit, take.size ?? limit));
  const active = new Set<Promise<void>>();
  if (!more) for (let i = 0; i < n; i++) active.add(work(first as W, false));
  else {
    active.add(work(first as W, false));
    for (let i = 1; i < n; i++) {
      more().then(
        (w) => (settled || !open() ? release?.(w, true) : active.add(work(w, true))),
        () => {},
      );
    }
  }
  // workers that joined while the others ran are waited for as well
  for (let size = 0; size !== active.size; ) {
    size = active.size;
    await Promise.all(active);
  }
  settled = true;
  if (failed) throw failed.err;
}

/** Items claimed one at a time: an array's synchronously, an async iterable's by one pull after another. */
function claimer<T>(items: readonly T[] | AsyncIterable<T>): {
  next(): Promise<{ item: T } | undefined>;
  exhausted(): boolean;
  size?: number;
} {
  if (Array.isArray(items)) {
    const list = items as readonly T[];
    let i = 0;
    return {
      next: async () => (i < list.length ? { item: list[i++] } : undefined),
      exhausted: () => i >= list.length,
      size: list.length,
    };
  }
  const it = (items as AsyncIterable<T>)[Symbol.asyncIterator]();
  let done = false;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    next() {
      const pulled = chain.then(async () => {
        if (done) return undefined;
        const r = await it.next();
        if (r.done) {
          done = true;
          return undefined;
        }
        return { item: r.value };
      });
      chain = pulled.catch(() => {
        done = true;
      });
      return pulled;
    },
    exhausted: () => done,
  };
}
