import type { ImportSlice } from '../contracts/sink-endpoint.js';
import type { RecordReader, StagedSlice } from '../contracts/staging.js';
import type { Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/**
 * Bytes of a live slice held for a sink that reads it, at most: past them the export waits until the sink took half.
 */
export const LIVE_QUEUE_BYTES = 8 * 1024 * 1024;
/**
 * Bytes of a live slice held for a sink that has not started reading it, at most: past them the reader takes the rest
 * of the slice from staging once it is staged (the export never waits for a sink that is not reading).
 */
export const LIVE_HOLD_BYTES = 16 * 1024 * 1024;

/** What the export writes into a live slice, chunk by chunk, as it stages the same chunks (export-encoded.ts). @internal */
export interface LiveTap {
  /**
   * A chunk the export is staging, unchanged (the tap keeps it: a source never reuses a chunk it yielded). Returns a
   * promise when the export should wait for the sink (the sink is reading this slice and holds a full queue of it).
   */
  write(chunk: Uint8Array): Promise<void> | undefined;
  /** The export attempt wrote its last chunk. */
  complete(): void;
  /** The export attempt failed: the reader fails (the slice goes to the sink from staging, after a retry). */
  fail(err: unknown): void;
}

const liveSlices = new WeakSet<object>();

/** `slice` was handed to the sink while it was exported (a {@link LiveSlice}). @internal */
export function isLiveSlice(slice: object): boolean {
  return liveSlices.has(slice);
}

/** How one slice's pass-through export meets an overlapped import (export-encoded.ts). @internal */
export interface LiveHooks {
  /** Resolves once the sink would take the slice live, or never will: the export starts then. */
  ready(): Promise<void>;
  /** The slice's tap, asked at its first chunk; undefined when the sink does not take it live. */
  tap(codec: string): LiveTap | undefined;
}

/**
 * A slice handed to the sink while it is still being exported (docs/decisions/0018-overlapped-import.md, "live
 * slices"): its reader yields the chunks the export stages, as the export reads them — the pipe's shape, one stream
 * out and one in at once — and ends only once the slice is staged (durable, in the manifest), so the sink commits
 * nothing of a slice before staging holds it. While the sink reads the slice, the export keeps pace with it: past
 * {@link LIVE_QUEUE_BYTES} held, it waits until the sink took half (the pipe's backpressure; the export's server and
 * the import's then do not compete for the cores). A sink that has not started reading the slice (it waits for a
 * connection, or imports the slice before) is never waited for: past {@link LIVE_HOLD_BYTES} the reader drains what
 * it holds, waits for the slice to be staged and reads the rest from staging (skipping the bytes it gave), verified as
 * any staged slice. An export attempt that fails fails the reader with `source_failed` (retryable): the sink rolls the
 * slice back and its overlapped import falls back to the import step, which takes the slice from staging once the
 * retried export staged it. Even when the sink read nothing yet: it may hold a connection while it waits for the
 * bytes, and the retry may need that connection (a pool of one).
 * @internal
 */
export class LiveSlice implements LiveTap {
  readonly index: number;
  readonly #codec: string;
  readonly #openStaged: () => RecordReader;
  readonly #limit: number;
  readonly #hold: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** Bytes the export wrote in this attempt. */
  #written = 0;
  /** Bytes written when the queue overflowed: from there on, bytes come from staging. */
  #overflowAt: number | undefined;
  /** Bytes the reader yielded. */
  #delivered = 0;
  /** The export attempt wrote every chunk of the slice. */
  #complete = false;
  #read = false;
  /** The sink is reading the queue (the export keeps pace with it). */
  #streaming = false;
  /** The reader stopped: nothing more is held. */
  #detached = false;
  #staged: StagedSlice | undefined;
  #error: unknown;
  #failed = false;
  #wake: (() => void) | undefined;
  /** The export waits for the sink to take half the queue. */
  #drained: { promise: Promise<void>; resolve: () => void } | undefined;

  /**
   * `openStaged`: the staged slice's reader. `limit`: bytes held for a sink that reads, past which the export waits;
   * `hold`: bytes held for a sink that has not started reading, past which the rest comes from staging.
   */
  constructor(
    index: number,
    codec: string,
    openStaged: () => RecordReader,
    limit = LIVE_QUEUE_BYTES,
    hold = LIVE_HOLD_BYTES,
  ) {
    this.index = index;
    this.#codec = codec;
    this.#openStaged = openStaged;
    this.#limit = limit;
    this.#hold = hold;
  }

  /** The export attempt failed or the run stopped: the reader fails, a retry goes through staging. */
  get lost(): boolean {
    return this.#failed;
  }

  get sealed(): boolean {
    return this.#staged !== undefined;
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#failed || this.#staged || this.#complete || this.#detached) return undefined;
    this.#written += chunk.byteLength;
    if (this.#overflowAt === undefined) {
      if (this.#queued + chunk.byteLength <= this.#hold || this.#streaming) {
        this.#queue.push(chunk);
        this.#queued += chunk.byteLength;
      } else this.#overflowAt = this.#written - chunk.byteLength;
    }
    this.#signal();
    if (!this.#streaming || this.#overflowAt !== undefined || this.#queued <= this.#limit) return undefined;
    // the sink reads this slice: keep pace with it
    if (!this.#drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#drained = { promise, resolve };
    }
    return this.#drained.promise;
  }

  #release(): void {
    const d = this.#drained;
    this.#drained = undefined;
    d?.resolve();
  }

  complete(): void {
    this.#complete = true;
  }

  fail(err: unknown): void {
    if (this.#failed || this.#staged) return;
    this.#abandon(
      new IngestError(
        'source_failed',
        `The export of slice ${this.index} failed while the sink was taking it: the slice is rolled back in the sink and imported from staging once it is staged`,
        { retryable: true, cause: err instanceof Error ? err : undefined, details: { slice: this.index } },
      ),
    );
  }

  /** The slice is staged: the reader ends once it gave every byte (from its queue, or from staging). */
  seal(staged: StagedSlice): void {
    if (this.#failed || this.#staged) return;
    this.#staged = staged;
    if (!this.#read) {
      // not read yet (a sink that gathers its slices first): it reads the slice from staging, nothing is held
      this.#overflowAt = 0;
      this.#queue = [];
      this.#queued = 0;
    }
    this.#signal();
  }

  /** The run stopped: the reader fails with `err`. */
  abandon(err: unknown): void {
    if (!this.#staged) this.#abandon(err);
  }

  #abandon(err: unknown): void {
    this.#failed = true;
    this.#error = err;
    this.#queue = [];
    this.#queued = 0;
    this.#release();
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The slice as the sink takes it (its reader passed through `wrap`): rows and handle once staged. */
  importSlice(wrap: (reader: RecordReader) => RecordReader = (r) => r): ImportSlice {
    const live = this;
    const slice: ImportSlice = {
      index: this.index,
      get rows() {
        return live.#staged?.rows ?? 0;
      },
      get handle() {
        return live.#staged?.handle;
      },
      codec: this.#codec,
      reader: wrap(this.#reader()),
    };
    liveSlices.add(slice);
    return slice;
  }

  #reader(): RecordReader {
    const take = () => {
      if (this.#read) throw new Error(`The live reader of slice ${this.index} is read once`);
      this.#read = true;
    };
    return {
      iterEncoded: () => {
        take();
        return this.#bytes();
      },
      iterBatches: (chunkSize: number) => {
        take();
        return this.#rows(chunkSize);
      },
    };
  }

  async *#bytes(): AsyncGenerator<Uint8Array> {
    this.#streaming = true;
    try {
      yield* this.#live();
    } finally {
      // done, failed, or the sink stopped reading: the export never waits for this reader again
      this.#streaming = false;
      this.#detached = true;
      this.#queue = [];
      this.#queued = 0;
      this.#release();
    }
  }

  async *#live(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.#failed) throw this.#error;
      const chunk = this.#queue.shift();
      if (chunk) {
        this.#queued -= chunk.byteLength;
        this.#delivered += chunk.byteLength;
        if (this.#drained && this.#queued <= this.#limit / 2) this.#release();
        yield chunk;
        continue;
      }
      if (this.#overflowAt !== undefined && this.#delivered >= this.#overflowAt) {
        this.#streaming = false;
        break;
      }
      if (this.#staged) {
        // every chunk of the attempt was held and given: the slice is whole
        if (this.#complete && this.#overflowAt === undefined) return;
        this.#streaming = false;
        break;
      }
      await this.#wait();
    }
    // the rest from staging, once staged: verified to its end, the bytes already given skipped
    while (!this.#staged) {
      if (this.#failed) throw this.#error;
      await this.#wait();
    }
    let skip = this.#delivered;
    for await (const chunk of this.#openStaged().iterEncoded!()) {
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      const rest = skip > 0 ? chunk.subarray(skip) : chunk;
      skip = 0;
      this.#delivered += rest.byteLength;
      yield rest;
    }
  }

  /** A sink that takes rows: the staged slice's rows, once staged (nothing is held for it meanwhile). */
  async *#rows(chunkSize: number): AsyncGenerator<Row[]> {
    this.#detached = true;
    this.#queue = [];
    this.#queued = 0;
    while (!this.#staged) {
      if (this.#failed) throw this.#error;
      await this.#wait();
    }
    yield* this.#openStaged().iterBatches(chunkSize);
  }
}
