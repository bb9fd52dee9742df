import { createHash } from 'node:crypto';
import type { ObjectInfo, ObjectStore } from '../contracts/object-store.js';
import type { RecordCodec, RecordWriter, RowCounter } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { abortError } from '../util/abort.js';
import { BatchFeed } from './batch-feed.js';
import type { StagingManifestSlice } from './manifest.js';

/** Rows gathered from an iterable (not an array) before they are handed to the codec. */
const GATHER_ROWS = 1000;

/** What a slice writer needs from its session. */
export interface SliceWriterHost {
  readonly sessionId: string;
  readonly store: ObjectStore;
  readonly codec: RecordCodec;
  /** Record the finished slice in the manifest (serialized per session). */
  recordSlice(entry: StagingManifestSlice): Promise<void>;
  /** The writer is finished (closed, aborted or failed). */
  release(writer: ObjectStoreSliceWriter): void;
  /** Throws `staging_failed` when no more writers may start (sealed, closed). */
  assertWritable(what: string): void;
}

type State = 'idle' | 'writing' | 'closing' | 'closed' | 'aborted' | 'failed';

/**
 * Streams one slice into the object store: rows → codec → sha256/byte count → `store.put` body, with
 * backpressure (memory is one batch plus what the store buffers). `close()` records the slice in the manifest.
 */
export class ObjectStoreSliceWriter implements RecordWriter {
  readonly index: number;
  readonly key: string;
  readonly #host: SliceWriterHost;
  #schema: RecordSchema | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #feed = new BatchFeed<Row[]>();
  readonly #hash = createHash('sha256');
  #state: State = 'idle';
  #busy = false;
  #rows = 0;
  #bytes = 0;
  #upload: Promise<ObjectInfo> | undefined;
  #uploadError: unknown;
  #closing: Promise<void> | undefined;
  #onAbort: (() => void) | undefined;
  /** Pass-through mode (`writeEncoded`): bytes staged unchanged, rows counted by the codec. */
  #encoded: { feed: BatchFeed<Uint8Array>; counter: RowCounter } | undefined;

  constructor(
    host: SliceWriterHost,
    index: number,
    key: string,
    opts: { schema?: RecordSchema; signal?: AbortSignal },
  ) {
    this.#host = host;
    this.index = index;
    this.key = key;
    this.#schema = opts.schema;
    this.#signal = opts.signal;
  }

  /** `true` once bytes are flowing to the store and the writer is not finished. */
  get active(): boolean {
    return this.#state === 'writing' || this.#state === 'closing';
  }

  /**
   * Encode and upload `batch`. Resolves once the codec has taken every row (the caller may then reuse its objects).
   * @throws IngestError `staging_failed` when the writer is closed or the upload fails; `aborted` on the signal.
   */
  async writeBatch(batch: Iterable<Row> | AsyncIterable<Row>): Promise<void> {
    this.#assertUsable('writeBatch');
    if (this.#busy) throw this.#error('writeBatch called while another writeBatch is still running');
    if (this.#encoded) throw this.#error('writeBatch after writeEncoded: a writer takes rows or bytes');
    this.#busy = true;
    try {
      this.#start();
      if (Array.isArray(batch)) {
        await this.#push(batch);
      } else if (batch && typeof (batch as Iterable<Row>)[Symbol.iterator] === 'function') {
        let buf: Row[] = [];
        for (const row of batch as Iterable<Row>) {
          buf.push(row);
          if (buf.length >= GATHER_ROWS) {
            await this.#push(buf);
            buf = [];
          }
        }
        await this.#push(buf);
      } else if (batch && typeof (batch as AsyncIterable<Row>)[Symbol.asyncIterator] === 'function') {
        let buf: Row[] = [];
        for await (const row of batch as AsyncIterable<Row>) {
          buf.push(row);
          if (buf.length >= GATHER_ROWS) {
            await this.#push(buf);
            buf = [];
          }
        }
        await this.#push(buf);
      } else {
        throw new IngestError(
          'config_invalid',
          `writeBatch of ${this.#what()} needs an iterable of rows, got ${typeof batch}`,
        );
      }
    } catch (err) {
      await this.#fail(err);
      throw this.#failure(err);
    } finally {
      this.#busy = false;
    }
  }

  /** The codec id `writeEncoded` takes bytes of: the session codec's, when it can count rows without decoding. */
  get encoding(): string | undefined {
    return this.#host.codec.rowCounter ? this.#host.codec.id : undefined;
  }

  /** The session codec's rows per record batch (Arrow's `batchRows`), for sources that write its bytes themselves. */
  get encodingBatchRows(): number | undefined {
    return this.encoding === undefined ? undefined : this.#host.codec.batchRows;
  }

  /** Whether each row of the session codec is one line, for `policy.maxRowBytes` on encoded bytes. */
  get encodingRowsAreLines(): boolean | undefined {
    return this.encoding === undefined ? undefined : this.#host.codec.rowsAreLines;
  }

  /**
   * Pass-through: stage bytes already encoded with the session's codec unchanged (hashed, sized and row-counted
   * like encoded rows). A writer takes rows or bytes, not both.
   * @throws IngestError `staging_failed` (mixing rows and bytes, a codec without a row counter, upload failure), `aborted`.
   */
  async writeEncoded(chunk: Uint8Array, opts: { schema?: RecordSchema } = {}): Promise<void> {
    this.#assertUsable('writeEncoded');
    if (this.#busy) throw this.#error('writeEncoded called while another write is still running');
    const counter = this.#host.codec.rowCounter;
    if (!counter) throw this.#error(`codec ${this.#host.codec.id} cannot take encoded bytes (it has no row counter)`);
    if (this.#upload && !this.#encoded)
      throw this.#error('writeEncoded after writeBatch: a writer takes rows or bytes');
    this.#busy = true;
    try {
      if (!this.#upload) {
        this.#schema ??= opts.schema;
        this.#encoded = { feed: new BatchFeed<Uint8Array>(), counter: counter() };
        this.#start();
      }
      if (this.#signal?.aborted) throw abortError(this.#signal, this.#what());
      if (chunk.byteLength > 0) await this.#encoded!.feed.push(chunk);
    } catch (err) {
      await this.#fail(err);
      throw this.#failure(err);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Finish the upload and record the slice (rows, bytes, sha256, codec, schema) in the manifest.
   * Idempotent: a second call returns the first call's promise.
   * @throws IngestError `staging_failed` when the upload or the manifest update fails, or the session was sealed.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    try {
      this.#assertUsable('close');
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#busy) return Promise.reject(this.#error('close called while writeBatch is still running'));
    this.#closing = this.#finish();
    return this.#closing;
  }

  /** Drop the upload; nothing is recorded. Idempotent; a no-op after `close()` finished. */
  async abort(reason?: unknown): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'aborted' || this.#state === 'failed') return;
    this.#state = 'aborted';
    const why = IngestError.is(reason)
      ? reason
      : new IngestError('aborted', `${this.#what()} was aborted`, { cause: reason });
    this.#feed.fail(why);
    this.#encoded?.feed.fail(why);
    await this.#upload?.catch(() => {});
    this.#cleanup();
  }

  async #finish(): Promise<void> {
    this.#state = 'closing';
    try {
      this.#start();
      this.#feed.end();
      this.#encoded?.feed.end();
      const info = await this.#upload!;
      if (this.#uploadError !== undefined) throw this.#uploadError;
      if (this.#aborted()) throw new IngestError('aborted', `${this.#what()} was aborted while closing`);
      if (info.size !== this.#bytes) {
        throw this.#error(`the store reports ${info.size} bytes but ${this.#bytes} were written`);
      }
      if (this.#encoded) this.#rows = this.#countedRows(this.#encoded.counter);
      await this.#host.recordSlice({
        index: this.index,
        key: this.key,
        rows: this.#rows,
        bytes: this.#bytes,
        sha256: this.#hash.digest('hex'),
        ...(this.#host.store.contentEtags && info.etag ? { etag: info.etag } : {}),
        codec: this.#host.codec.id,
        contentType: this.#host.codec.contentType,
        ...(this.#schema ? { schema: this.#schema } : {}),
        writtenAt: new Date().toISOString(),
      });
      this.#state = 'closed';
      this.#cleanup();
    } catch (err) {
      await this.#fail(err);
      throw this.#failure(err);
    }
  }

  #start(): void {
    if (this.#upload) return;
    this.#host.assertWritable(`start ${this.#what()}`);
    if (this.#signal?.aborted) throw abortError(this.#signal, this.#what());
    if (this.#state === 'idle') this.#state = 'writing';
    const codec = this.#host.codec;
    const hash = this.#hash;
    const encoded: AsyncIterable<Uint8Array> = this.#encoded?.feed ?? codec.encode(this.#feed, this.#schema);
    const counter = this.#encoded?.counter;
    const self = this;
    async function* body(): AsyncGenerator<Uint8Array> {
      for await (const chunk of encoded) {
        if (!(chunk instanceof Uint8Array)) throw self.#error(`codec ${codec.id} yielded a ${typeof chunk}, not bytes`);
        hash.update(chunk);
        counter?.push(chunk);
        self.#bytes += chunk.byteLength;
        yield chunk;
      }
    }
    if (this.#signal) {
      this.#onAbort = () => {
        this.#feed.fail(abortError(this.#signal, this.#what()));
        this.#encoded?.feed.fail(abortError(this.#signal, this.#what()));
      };
      this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.#upload = this.#host.store.put(this.key, body(), { contentType: codec.contentType, signal: this.#signal });
    this.#upload.then(
      () => {
        // A codec that returns without taking every batch would leave writeBatch waiting forever.
        if (this.#state !== 'closing') {
          this.#feed.fail(this.#error(`codec ${codec.id} stopped before taking every row`));
          this.#encoded?.feed.fail(this.#error('the store stopped before taking every byte'));
        }
      },
      (err) => {
        this.#uploadError ??= err;
        this.#feed.fail(err);
        this.#encoded?.feed.fail(err);
      },
    );
  }

  async #push(rows: Row[]): Promise<void> {
    if (this.#signal?.aborted) throw abortError(this.#signal, this.#what());
    if (rows.length === 0) return;
    await this.#feed.push(rows);
    this.#rows += rows.length;
  }

  async #fail(err: unknown): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    const wasAborted = this.#state === 'aborted';
    this.#state = 'failed';
    if (!wasAborted) {
      this.#feed.fail(err);
      this.#encoded?.feed.fail(err);
    }
    await this.#upload?.catch(() => {});
    this.#cleanup();
  }

  /** The error to show: the upload's own failure wins over the hand-off's. */
  #failure(err: unknown): IngestError {
    const cause = this.#uploadError ?? err;
    if (IngestError.is(cause)) return cause;
    return IngestError.wrap(cause, 'staging_failed', `Writing ${this.#what()} failed`, {
      sessionId: this.#host.sessionId,
      slice: this.index,
    });
  }

  #cleanup(): void {
    if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onAbort = undefined;
    this.#host.release(this);
  }

  #assertUsable(what: string): void {
    if (this.#state === 'idle' || this.#state === 'writing') return;
    const why =
      this.#state === 'aborted' ? 'was aborted' : this.#state === 'failed' ? 'failed earlier' : 'is already closed';
    throw this.#error(`cannot ${what}: the writer ${why}`);
  }

  /** Rows of an encoded slice; bytes that end inside a row are refused. */
  #countedRows(counter: RowCounter): number {
    try {
      return counter.end();
    } catch (err) {
      throw this.#error(`the encoded bytes are not whole rows of ${this.#host.codec.id}: ${(err as Error).message}`);
    }
  }

  /** Read through a method: `abort()` may change the state while `close()` awaits. */
  #aborted(): boolean {
    return this.#state === 'aborted';
  }

  #what(): string {
    return `slice ${this.index} of staging session ${this.#host.sessionId}`;
  }

  #error(message: string): IngestError {
    return new IngestError('staging_failed', `${this.#what()}: ${message}`, {
      retryable: false,
      details: { sessionId: this.#host.sessionId, slice: this.index },
    });
  }
}
