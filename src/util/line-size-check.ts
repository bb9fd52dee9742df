/**
 * `maxRowBytes` on newline-terminated text (a row is a line: COPY text, LOAD DATA text, NDJSON), fed chunk by chunk:
 * a line longer than `max` bytes (its newline not counted) calls `reject(row, bytes)` (0-based row), which throws.
 * @internal
 */
export class LineSizeCheck {
  #line = 0;
  #row = 0;
  constructor(
    readonly max: number,
    readonly reject: (row: number, bytes: number) => Error,
  ) {}

  check(bytes: Uint8Array): void {
    const max = this.max;
    let start = 0;
    for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) {
      if (this.#line + (i - start) > max) throw this.reject(this.#row, this.#line + (i - start));
      this.#line = 0;
      this.#row++;
      start = i + 1;
    }
    this.#line += bytes.byteLength - start;
    if (this.#line > max) throw this.reject(this.#row, this.#line);
  }
}
