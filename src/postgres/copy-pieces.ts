/*
 * The output side of the import transcoders (docs/decisions/0008-transcoded-row-paths.md): COPY text lines written
 * into byte pieces of about `pieceBytes` as they come, not joined into one long string — a string built over a whole
 * piece survives young-generation collections and is promoted, and old-space garbage is what grew the peak RSS.
 */

/** A transcoder that writes a line's COPY text from the staged bytes, when it can. */
export interface ByteLineWriter {
  /** The most bytes {@link ByteLineWriter.lineBytes} writes for a staged line of `n` bytes. */
  room(n: number): number;
  /**
   * Write the COPY text line (with its newline) of the staged line `b[s, e)` into `out` at `pos` (at least
   * {@link ByteLineWriter.room} bytes free): the position after it, or -1 when the line needs the row path.
   */
  lineBytes(b: Buffer, s: number, e: number, out: Buffer, pos: number): number;
}

/** COPY text lines gathered into pieces of about `size` bytes, each with the number of rows it holds. */
export class CopyPieces {
  readonly #size: number;
  #piece: Buffer;
  #used = 0;
  #rows = 0;
  readonly #full: Buffer[] = [];
  readonly #counts: number[] = [];

  constructor(size: number) {
    this.#size = size;
    this.#piece = Buffer.allocUnsafe(size);
  }

  /** Room for `n` more bytes in the piece (a full piece is handed on first). */
  #reserve(n: number): void {
    if (this.#used + n > this.#size && this.#used > 0) {
      this.#full.push(this.#piece.subarray(0, this.#used));
      this.#counts.push(this.#rows);
      this.#piece = Buffer.allocUnsafe(this.#size);
      this.#used = 0;
      this.#rows = 0;
    }
  }

  /**
   * The line `b[s, e)` written by `w` (into a piece of its own when longer than a piece): `false` when `w` leaves it
   * to the row path (nothing written).
   */
  bytes(w: ByteLineWriter, b: Buffer, s: number, e: number): boolean {
    const room = w.room(e - s);
    if (room <= this.#size) {
      this.#reserve(room);
      const end = w.lineBytes(b, s, e, this.#piece, this.#used);
      if (end < 0) return false;
      this.#used = end;
      this.#rows++;
      return true;
    }
    const own = Buffer.allocUnsafe(room);
    const end = w.lineBytes(b, s, e, own, 0);
    if (end < 0) return false;
    this.#reserve(this.#size + 1);
    this.#full.push(own.subarray(0, end));
    this.#counts.push(1);
    return true;
  }

  /** A COPY text line from the row path's functions (a string, with its newline). */
  text(out: string): void {
    // at most 3 bytes of UTF-8 per UTF-16 unit
    this.#reserve(out.length * 3);
    if (out.length * 3 > this.#size) {
      this.#full.push(Buffer.from(out, 'utf8'));
      this.#counts.push(1);
    } else {
      this.#used += this.#piece.write(out, this.#used, 'utf8');
      this.#rows++;
    }
  }

  /** The full pieces so far (each counted to `onRows` as it is handed on); `end` adds the last, partial one. */
  *take(onRows: ((rows: number) => void) | undefined, end = false): Generator<Buffer> {
    if (end && this.#used > 0) this.#reserve(this.#size + 1);
    for (let i = 0; i < this.#full.length; i++) {
      onRows?.(this.#counts[i]);
      yield this.#full[i];
    }
    this.#full.length = 0;
    this.#counts.length = 0;
  }
}
