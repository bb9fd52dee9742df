import { AsyncByteQueue } from 'apache-arrow';

/**
 * Collects what a `RecordBatchStreamWriter` writes, so the bytes of each record batch can be handed on at once
 * (the same sink the Arrow codec uses; kept here so the transcoders load nothing but apache-arrow).
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
