/**
 * A one-slot hand-off between a writer (`push`) and a consumer (`for await`): `push(batch)` resolves once
 * the consumer asks for the batch after it, i.e. once it is completely done with `batch`. Memory held is one
 * batch; a slow consumer slows the producer down (backpressure).
 */
export class BatchFeed<T> implements AsyncIterable<T> {
  #pending: { item: T; resolve: () => void; reject: (err: unknown) => void } | undefined;
  #delivered: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  #wake: (() => void) | undefined;
  #ended = false;
  #failed = false;
  #error: unknown;
  #iterating = false;

  /** Hand `item` to the consumer; resolves when the consumer is done with it. */
  push(item: T): Promise<void> {
    if (this.#failed) return Promise.reject(this.#error);
    if (this.#ended || this.#pending)
      return Promise.reject(new Error('BatchFeed: push after end or while a push is pending'));
    return new Promise<void>((resolve, reject) => {
      this.#pending = { item, resolve, reject };
      this.#signal();
    });
  }

  /** No more items: the consumer's loop ends after the last one. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** Fail both sides: pending pushes reject, the consumer's next step throws `err`. */
  fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = err;
    this.#pending?.reject(err);
    this.#delivered?.reject(err);
    this.#pending = undefined;
    this.#delivered = undefined;
    this.#signal();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    if (this.#iterating) throw new Error('BatchFeed can be iterated once');
    this.#iterating = true;
    try {
      while (true) {
        // Asking for the next item means the previous one is fully consumed.
        this.#delivered?.resolve();
        this.#delivered = undefined;
        while (!this.#pending && !this.#ended && !this.#failed) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
        if (this.#failed) throw this.#error;
        const next = this.#pending;
        if (!next) return;
        this.#pending = undefined;
        this.#delivered = next;
        yield next.item;
      }
    } finally {
      // The consumer stopped early (error or return): nobody will take further items.
      if (!this.#ended || this.#pending) this.fail(this.#error ?? new Error('BatchFeed consumer stopped'));
      else this.#delivered?.resolve();
    }
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
