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
 * being claimed; the items in flight finish, then the first error is rethrown.
 * @internal
 */
export async function runBounded<T, W = undefined>(
  items: readonly T[],
  limit: number,
  fn: (item: T, worker: W) => Promise<void>,
  options: BoundedOptions<W> = {},
): Promise<void> {
  const { signal, first, more, release } = options;
  let next = 0;
  let failed: { err: unknown } | undefined;
  let settled = false;
  const open = () => !failed && !signal?.aborted && next < items.length;
  const work = async (w: W, own: boolean) => {
    let healthy = true;
    try {
      while (open()) {
        try {
          await fn(items[next++], w);
        } catch (err) {
          healthy = false;
          failed ??= { err };
        }
      }
    } finally {
      if (own) release?.(w, healthy);
    }
  };
  const n = Math.max(1, Math.min(limit, items.length));
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
