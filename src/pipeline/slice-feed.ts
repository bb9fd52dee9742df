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
  /** The sink stopped taking slices (its import ended or failed). */
  #closed = false;
  /** Exports waiting for the sink to want their slice ({@link wanted}). */
  #wanting: Array<{ index: number; resolve: () => void }> = [];

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

  /**
   * The sink has nothing waiting to be taken and slice `index` would be handed over next: a slice pushed now reaches
   * it first (what a live slice needs, live-slice.ts).
   */
  takesNext(index: number): boolean {
    if (this.#ended || this.#error || this.#ready.length > 0) return false;
    return !this.#order || this.#order[this.#nextInOrder] === index;
  }

  /**
   * Resolves once the sink waits for its next slice and that is slice `index` (see {@link takesNext}) — or once it
   * will take no more slices. What a live slice's export waits for before it starts (live-slice.ts).
   */
  wanted(index: number): Promise<void> {
    if (this.#closed || this.#error || this.#ended || (this.#wake && this.takesNext(index))) return Promise.resolve();
    return new Promise<void>((resolve) => this.#wanting.push({ index, resolve }));
  }

  /** The sink takes no more slices: every export waiting in {@link wanted} goes on. */
  close(): void {
    this.#closed = true;
    this.#checkWanted();
  }

  #checkWanted(): void {
    if (!this.#wanting.length) return;
    const all = this.#closed || this.#error !== undefined || this.#ended;
    this.#wanting = this.#wanting.filter((w) => {
      if (!all && !(this.#wake && this.takesNext(w.index))) return true;
      w.resolve();
      return false;
    });
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
    this.#checkWanted();
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
        this.#checkWanted();
      });
    }
  }
}
