import type { ImportSlice, RecordReader } from '../../src/index.js';

/**
 * `slice` with another reader. `rows` and `handle` stay getters: a slice handed over while it is exported (a live
 * slice) knows them only once it is staged, so a copy made with a spread would keep their values from before.
 */
export function withReader(slice: ImportSlice, reader: RecordReader): ImportSlice {
  return {
    index: slice.index,
    get rows() {
      return slice.rows;
    },
    get handle() {
      return slice.handle;
    },
    ...(slice.codec ? { codec: slice.codec } : {}),
    reader,
  };
}
