import type { RowCounter } from '../contracts/staging.js';

const NL = 0x0a;

/**
 * A {@link RowCounter} for line-oriented text formats whose rows each end with a newline byte (PostgreSQL COPY text,
 * MySQL LOAD DATA text): one row per newline; `end()` throws when the bytes end inside a row.
 * @param format the format's name, for the error message
 * @internal
 */
export function newlineRowCounter(format: string): RowCounter {
  let rows = 0;
  let last = NL;
  return {
    push(chunk: Uint8Array) {
      if (chunk.byteLength === 0) return;
      for (let i = chunk.indexOf(NL); i !== -1; i = chunk.indexOf(NL, i + 1)) rows++;
      last = chunk[chunk.byteLength - 1];
    },
    end() {
      if (last !== NL) throw new Error(`the ${format} text ends inside a row (no final newline)`);
      return rows;
    },
  };
}
