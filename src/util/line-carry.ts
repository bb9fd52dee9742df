/**
 * The bytes of a line that spans chunks, kept as the chunks and joined once, when the line ends: appending chunk by
 * chunk to one buffer copies a long line again for every chunk (a 40 MB row in 64 KiB chunks: ~13 GB copied).
 * @internal
 */
export class LineCarry {
  #parts: Buffer[] = [];
  #bytes = 0;

  /** Bytes carried. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Carry `b` (kept as it is: pass a copy when the caller may reuse it). */
  add(b: Buffer): void {
    if (b.length === 0) return;
    this.#parts.push(b);
    this.#bytes += b.length;
  }

  /** The carried bytes followed by `tail`, in one buffer; the carry is empty again. */
  take(tail?: Buffer): Buffer {
    const parts = tail?.length ? [...this.#parts, tail] : this.#parts;
    const size = this.#bytes + (tail?.length ?? 0);
    this.#parts = [];
    this.#bytes = 0;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
  }
}
