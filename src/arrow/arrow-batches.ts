import { AsyncByteQueue, type RecordBatch, RecordBatchReader } from 'apache-arrow';
import type { Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { cellReader, fromArrowValue, isAbsentField, keyOf, logicalTypeOf } from './arrow-types.js';

/*
 * Reading and writing Arrow IPC streams, shared by the Arrow codec and the PostgreSQL transcoders
 * (docs/decisions/0008-transcoded-row-paths.md). Loads nothing but apache-arrow and the value model.
 */

/**
 * Collects what a `RecordBatchStreamWriter` writes, so the bytes of each record batch can be handed on at once.
 * @internal
 */
export class ArrowChunkSink extends AsyncByteQueue {
  chunks: Uint8Array[] = [];
  size = 0;

  override write(value: ArrayBufferView | ArrayBufferLike | string): void {
    if (typeof value === 'string') value = Buffer.from(value, 'utf8');
    const u =
      value instanceof Uint8Array
        ? value
        : ArrayBuffer.isView(value)
          ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
          : new Uint8Array(value);
    if (u.byteLength > 0) {
      this.chunks.push(u);
      this.size += u.byteLength;
    }
  }

  /** Everything written since the last call, as one fresh buffer (the writer's buffers are not kept). */
  take(): Uint8Array | undefined {
    if (this.chunks.length === 0) return undefined;
    const out = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.size = 0;
    return out;
  }
}

/** A reader's failure as the codec reports it: `staging_corrupt` (an IngestError passes through). @internal */
export function arrowCorrupt(err: unknown): IngestError {
  if (IngestError.is(err)) return err;
  return new IngestError(
    'staging_corrupt',
    `Invalid Arrow IPC stream: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

/** The record batches of every IPC stream in `bytes`, failures as {@link arrowCorrupt}. @internal */
export async function* arrowBatches(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<RecordBatch> {
  let readers: AsyncIterable<AsyncIterable<RecordBatch>>;
  try {
    readers = RecordBatchReader.readAll(bytes) as unknown as AsyncIterable<AsyncIterable<RecordBatch>>;
  } catch (err) {
    throw arrowCorrupt(err);
  }
  const it = readers[Symbol.asyncIterator]();
  while (true) {
    let step: IteratorResult<AsyncIterable<RecordBatch>>;
    try {
      step = await it.next();
    } catch (err) {
      throw arrowCorrupt(err);
    }
    if (step.done) return;
    const batches = step.value[Symbol.asyncIterator]();
    while (true) {
      let b: IteratorResult<RecordBatch>;
      try {
        b = await batches.next();
      } catch (err) {
        throw arrowCorrupt(err);
      }
      if (b.done) break;
      yield b.value;
    }
  }
}

/**
 * The rows of a record batch as the codec decodes them: values by the fields' logical types, keys the hidden column
 * of absent keys names left out, `__proto__` kept as data. @internal
 */
export function rowsOfBatch(batch: RecordBatch): Row[] {
  const all = batch.schema.fields;
  const absentAt = all.findIndex(isAbsentField);
  const at = all.map((_, i) => i).filter((i) => i !== absentAt);
  const types = at.map((i) => logicalTypeOf(all[i]));
  const cells = at.map((i, k) => cellReader(types[k], batch.getChildAt(i)!));
  const names = at.map((i) => keyOf(all[i]));
  const absent = absentAt >= 0 ? batch.getChildAt(absentAt)! : undefined;
  const rows: Row[] = new Array(batch.numRows);
  for (let r = 0; r < batch.numRows; r++) {
    const row: Row = {};
    const gaps = absent?.get(r) as string | null | undefined;
    const skip = gaps ? new Set(gaps.split(',').map(Number)) : undefined;
    for (let c = 0; c < names.length; c++) {
      if (skip?.has(c)) continue;
      const value = fromArrowValue(types[c], cells[c](r));
      if (names[c] === '__proto__')
        Object.defineProperty(row, names[c], { value, enumerable: true, writable: true, configurable: true });
      else row[names[c]] = value;
    }
    rows[r] = row;
  }
  return rows;
}
