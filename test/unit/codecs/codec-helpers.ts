import type { RecordCodec, RecordSchema, Row } from '../../../src/index.js';

/** Encode `batches` with `codec` into one buffer. */
export async function encodeAll(codec: RecordCodec, batches: Row[][], schema?: RecordSchema): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  async function* source() {
    yield* batches;
  }
  for await (const c of codec.encode(source(), schema)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Decode `bytes`, fed in pieces of `pieceSize` bytes. */
export async function decodeAll(
  codec: RecordCodec,
  bytes: Uint8Array,
  pieceSize = 1 << 20,
  schema?: RecordSchema,
): Promise<Row[]> {
  async function* source() {
    for (let at = 0; at < bytes.byteLength; at += pieceSize) yield bytes.subarray(at, at + pieceSize);
  }
  const rows: Row[] = [];
  for await (const batch of codec.decode(source(), schema)) rows.push(...batch);
  return rows;
}
