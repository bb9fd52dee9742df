import type { Row } from '../contracts/values.js';

/**
 * The rows of a slice as UTF-8 text pieces of about `pieceBytes` for a bulk loader (COPY, LOAD DATA): each row is
 * encoded on its own (`encode` gets the row and its 1-based number in the slice), so memory follows a few rows, never
 * a batch or a slice as one string. `onBatch` runs before each batch (an abort check) and `rows` after it.
 * @internal
 */
export async function* rowText(
  batches: AsyncIterable<Row[]>,
  pieceBytes: number,
  encode: (row: Row, n: number) => string,
  on: { batch(): void; rows(n: number): void },
): AsyncGenerator<Buffer> {
  let pending = '';
  let n = 0;
  for await (const batch of batches) {
    on.batch();
    for (const row of batch) {
      const text = encode(row, ++n);
      if (pending.length + text.length > pieceBytes && pending.length > 0) {
        yield Buffer.from(pending, 'utf8');
        pending = '';
      }
      pending += text;
      if (pending.length >= pieceBytes) {
        yield Buffer.from(pending, 'utf8');
        pending = '';
      }
    }
    on.rows(batch.length);
  }
  if (pending) yield Buffer.from(pending, 'utf8');
}

/** The rows (`\n`-terminated lines) in a chunk of a bulk loader's text. @internal */
export function countLines(chunk: Uint8Array): number {
  let n = 0;
  for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) n++;
  return n;
}
