import { Message, MessageHeader } from 'apache-arrow';
import type { RowCounter } from '../contracts/staging.js';

const CONTINUATION = 0xffffffff;

/**
 * Counts the rows of Arrow IPC stream bytes (one or several streams back to back) without decoding a column: it
 * reads each message's metadata (a record batch's `length`) and skips the message bodies. Lets staging verify an
 * Arrow slice (size, sha256, rows) in one pass without a decode (docs/decisions/0006-postgres-pass-through-and-pipelining.md).
 * @internal
 */
export function arrowRowCounter(): RowCounter {
  let rows = 0;
  /** Bytes of the current message's prefix and metadata gathered so far (small). */
  let head: Buffer = Buffer.alloc(0);
  /** Body bytes of the last message still to skip. */
  let skip = 0;
  /** Bytes `head` must hold to be complete: the prefix (4 or 8) until the metadata length is known. */
  const needed = (): { total: number; prefix: number } => {
    if (head.length < 4) return { total: 4, prefix: 4 };
    const first = head.readUInt32LE(0);
    if (first !== CONTINUATION) return { total: 4 + first, prefix: 4 }; // legacy format without continuation
    if (head.length < 8) return { total: 8, prefix: 8 };
    return { total: 8 + head.readUInt32LE(4), prefix: 8 };
  };
  return {
    push(chunk: Uint8Array) {
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let at = 0;
      while (at < buf.length) {
        if (skip > 0) {
          const n = Math.min(skip, buf.length - at);
          skip -= n;
          at += n;
          continue;
        }
        let need = needed();
        const take = Math.min(need.total - head.length, buf.length - at);
        head = Buffer.concat([head, buf.subarray(at, at + take)]);
        at += take;
        need = needed();
        if (head.length < need.total) continue;
        if (need.total > need.prefix) {
          const message = Message.decode(head.subarray(need.prefix, need.total));
          if (message.headerType === MessageHeader.RecordBatch) rows += (message.header() as { length: number }).length;
          skip = message.bodyLength;
        } // else: an end-of-stream marker (metadata length 0); another stream may follow
        head = Buffer.alloc(0);
      }
    },
    end() {
      if (skip > 0 || head.length > 0) throw new Error('the Arrow stream ends inside a message');
      return rows;
    },
  };
}
