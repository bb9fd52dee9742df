import { Readable } from 'node:stream';
import type pg from 'pg';

/*
 * `COPY … TO STDOUT` as a byte stream of whole rows, read straight from the connection's socket: the job of
 * pg-copy-streams' `to()`, whose protocol handling (take the socket from pg while the COPY runs, hand the rest back
 * at CopyDone or at an ErrorResponse) this follows. What differs is the work per row: `to()` makes a Buffer per
 * CopyData message (one per row: at 1,000,000 rows of the e2e bench, 117 of the 148 MB the whole NDJSON run allocated on
 * the JS heap), joins them again per socket read, and reads the socket with `read()`, which joins what the socket
 * buffered; the caller then joined reads up to 64 KiB once more. Here each CopyData payload is copied once, by
 * index, into an output piece of at most `PIECE_BYTES`; a piece always ends at the end of a row (PostgreSQL sends one
 * CopyData message per row), so a consumer that splits lines never carries a partial one (correctness does not depend
 * on it: a message that ended inside a row would only make the consumer carry it). The socket is read in flowing
 * mode, paused for backpressure.
 */

const COPY_DATA = 0x64; // d
const ERROR_RESPONSE = 0x45; // E
const COPY_OUT_RESPONSE = 0x48; // H
const NOTICE_RESPONSE = 0x4e; // N
const PARAMETER_STATUS = 0x53; // S
const NOTIFICATION_RESPONSE = 0x41; // A

/**
 * Bytes of rows per piece, at most (a longer row is a piece of its own): what the staging writer takes at once (larger
 * pieces only raised the peak RSS, measured at 1 MiB).
 */
const PIECE_BYTES = 64 * 1024;

type DataListener = (chunk: Buffer) => void;

/**
 * A pg submittable (`client.query(new CopyOutStream(sql))`) that runs `COPY … TO STDOUT` and is readable as its
 * bytes, in pieces that end at row ends. `rowCount` holds the server's count once the stream has ended.
 * @internal
 */
export class CopyOutStream extends Readable {
  readonly text: string;
  /** Rows the server reports copied (its CommandComplete), once the stream has ended. */
  rowCount = 0;
  #connection: pg.Connection | undefined;
  #pgData: DataListener | undefined;
  readonly #onData = (chunk: Buffer) => this.#parse(chunk);
  #attached = false;
  #paused = false;
  /** Header bytes of the current message seen so far (0–5: code, then a 4-byte length). */
  #headerBytes = 0;
  #code = 0;
  #length = 0;
  /** Payload bytes of the current message still to come. */
  #remaining = 0;
  #piece: Buffer | undefined;
  #pos = 0;

  constructor(text: string) {
    super({ highWaterMark: 2 * PIECE_BYTES });
    this.text = text;
  }

  /** Called by pg when the query's turn comes: take the socket's data, send the query. */
  submit(connection: pg.Connection): void {
    this.#connection = connection;
    const socket = connection.stream;
    const listeners = socket.listeners('data');
    if (listeners.length !== 1)
      throw new Error(`CopyOutStream: expected pg's one data listener, found ${listeners.length}`);
    this.#pgData = listeners[0] as DataListener;
    socket.removeListener('data', this.#pgData);
    socket.on('data', this.#onData);
    this.#attached = true;
    connection.query(this.text);
  }

  handleError(err: Error): void {
    this.destroy(err);
  }

  handleCommandComplete(msg: { text?: string } | undefined): void {
    const match = /COPY (\d+)/.exec(msg?.text ?? '');
    if (match) this.rowCount = Number.parseInt(match[1], 10);
  }

  handleReadyForQuery(): void {}

  override _read(): void {
    if (this.#paused && this.#attached) {
      this.#paused = false;
      this.#connection!.stream.resume();
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Stopped before CopyDone: the connection is dropped by its owner; let the socket drain so it can close.
    if (this.#attached) {
      this.#attached = false;
      const socket = this.#connection!.stream;
      socket.removeListener('data', this.#onData);
      socket.resume();
    }
    this.#piece = undefined;
    callback(err);
  }

  /** Give the socket back to pg with the bytes after the COPY's messages. */
  #detach(rest: Buffer): void {
    this.#attached = false;
    const socket = this.#connection!.stream;
    socket.removeListener('data', this.#onData);
    socket.on('data', this.#pgData!);
    this.#pgData!(rest);
    if (this.#paused) {
      this.#paused = false;
      socket.resume();
    }
  }

  /** Room for a payload of `n` bytes in the current piece (a full piece is pushed first). */
  #room(n: number): boolean {
    let ok = true;
    if (this.#piece && this.#pos + n > this.#piece.length) {
      if (this.#pos > 0) ok = this.push(this.#piece.subarray(0, this.#pos));
      this.#piece = undefined;
    }
    if (!this.#piece) {
      this.#piece = Buffer.allocUnsafe(Math.max(PIECE_BYTES, n));
      this.#pos = 0;
    }
    return ok;
  }

  #parse(chunk: Buffer): void {
    if (!this.#attached) return;
    let ok = true;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#headerBytes < 5) {
        if (this.#headerBytes === 0) {
          const code = chunk[i];
          if (code === ERROR_RESPONSE) {
            // pg parses the error and fails the query (handleError)
            this.#detach(chunk.subarray(i));
            return;
          }
          this.#code = code;
          this.#length = 0;
          i++;
          this.#headerBytes = 1;
        }
        while (this.#headerBytes < 5 && i < n) {
          this.#length = this.#length * 256 + chunk[i++];
          this.#headerBytes++;
        }
        if (this.#headerBytes < 5) break;
        this.#remaining = this.#length - 4;
        if (this.#code === COPY_DATA && this.#remaining > 0) ok = this.#room(this.#remaining) && ok;
      }
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        if (this.#code === COPY_DATA) {
          const piece = this.#piece!;
          let p = this.#pos;
          // a native copy (one view object) beats a byte loop from a few dozen bytes on
          if (take > 32) {
            piece.set(chunk.subarray(i, i + take), p);
            p += take;
          } else for (let j = i, end = i + take; j < end; j++) piece[p++] = chunk[j];
          this.#pos = p;
        }
        i += take;
        this.#remaining -= take;
        if (this.#remaining > 0) break;
      }
      // a whole message
      this.#headerBytes = 0;
      const code = this.#code;
      if (
        code === COPY_DATA ||
        code === COPY_OUT_RESPONSE ||
        code === NOTICE_RESPONSE ||
        code === PARAMETER_STATUS ||
        code === NOTIFICATION_RESPONSE
      ) {
        continue;
      }
      // CopyDone (or any other message, which ends copy-out mode): the rest is pg's
      if (this.#piece && this.#pos > 0) this.push(this.#piece.subarray(0, this.#pos));
      this.#piece = undefined;
      this.#detach(chunk.subarray(i));
      this.push(null);
      return;
    }
    if (!ok && !this.#paused) {
      this.#paused = true;
      this.#connection!.stream.pause();
    }
  }
}
