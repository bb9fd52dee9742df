import type { ImportSlice } from '../contracts/sink-endpoint.js';

/**
 * The slices of an overlapped run on their way from the export to the sink (docs/decisions/0018-overlapped-import.md):
 * the export `push`es each slice once it is staged, `end`s the feed once the session is sealed, or `fail`s it when the
 * export failed. In `order` (merge, replace) a slice is handed over only after every slice before it in the plan; else
 * (append) as soon as it is staged. Pushing never waits: the feed holds slice descriptions, not rows.
 * @internal
 */
export class SliceFeed implements AsyncIterable<ImportSlice> {
  readonly #order: readonly number[] | undefined;
  #nextInOrder = 0;
  readonly #held = new Map<number, ImportSlice>();
  readonly #ready: ImportSlice[] = [];
  #ended = false;
  #error: { err: unknown } | undefined;
  #wake: (() => void) | undefined;
  #iterated = false;

  /** `order`: the slice indices in the order they must reach the sink; none: any order. */
  constructor(order?: readonly number[]) {
    this.#order = order;
  }

  push(slice: ImportSlice): void {
    if (this.#ended || this.#error) return;
    if (!this.#order) this.#ready.push(slice);
    else {
      this.#held.set(slice.index, slice);
      for (;;) {
        const next = this.#order[this.#nextInOrder];
        const s = next === undefined ? undefined : this.#held.get(next);
        if (!s) break;
        this.#held.delete(next!);
        this.#ready.push(s);
        this.#nextInOrder++;
      }
    }
    this.#signal();
  }

  /** No more slices: the iteration ends once the ready ones are taken. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** The export failed: the iteration throws `err` at the sink's next pull. */
  fail(err: unknown): void {
    this.#error ??= { err };
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ImportSlice> {
    if (this.#iterated) throw new Error('SliceFeed is iterated once');
    this.#iterated = true;
    for (;;) {
      if (this.#error) throw this.#error.err;
      const s = this.#ready.shift();
      if (s) {
        yield s;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}
