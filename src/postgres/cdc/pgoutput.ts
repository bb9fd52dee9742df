/**
 * A decoder of the `pgoutput` logical replication protocol (version 1), the messages inside the `XLogData` frames of a
 * `START_REPLICATION … LOGICAL` stream. Values stay PostgreSQL's text (the walsender's output functions, under the
 * replication connection's DateStyle/TimeZone/bytea_output settings); an unchanged TOASTed value is its own marker,
 * never a NULL or an old value (docs/decisions/0015-postgres-cdc.md).
 */

/** A column of a relation as pgoutput describes it. */
export interface RelationColumn {
  name: string;
  /** Part of the replica identity (the key sent with updates and deletes). */
  key: boolean;
  typeOid: number;
  typmod: number;
}

/** One value of a tuple: `null`, an unchanged TOASTed value (`UNCHANGED`), or PostgreSQL's text. */
export type TupleValue = string | null | typeof UNCHANGED;

/** Marks a TOASTed value the update did not change (pgoutput sends no value for it). */
export const UNCHANGED: unique symbol = Symbol('unchanged toast');

export type PgOutputMessage =
  | { tag: 'begin'; finalLsn: bigint; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | {
      tag: 'relation';
      relid: number;
      schema: string;
      name: string;
      replicaIdentity: string;
      columns: RelationColumn[];
    }
  | { tag: 'insert'; relid: number; row: TupleValue[] }
  | { tag: 'update'; relid: number; row: TupleValue[]; old?: TupleValue[]; oldKind?: 'key' | 'full' }
  | { tag: 'delete'; relid: number; old: TupleValue[]; oldKind: 'key' | 'full' }
  | { tag: 'truncate'; relids: number[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'other'; code: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    return this.buf.readUInt8(this.pos++);
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  str(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const s = decoder.decode(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.pos, this.pos + n);
    if (b.length !== n) throw new Error('pgoutput: truncated value');
    this.pos += n;
    return b;
  }
  tuple(): TupleValue[] {
    const n = this.i16();
    const out: TupleValue[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const kind = this.u8();
      if (kind === 0x6e /* n */) out[i] = null;
      else if (kind === 0x75 /* u */) out[i] = UNCHANGED;
      else if (kind === 0x74 /* t */) out[i] = decoder.decode(this.bytes(this.i32()));
      else throw new Error(`pgoutput: unsupported tuple value kind ${String.fromCharCode(kind)} (binary mode is off)`);
    }
    return out;
  }
}

/** Decode one pgoutput message (the payload of an `XLogData` frame). */
export function decodePgOutput(buf: Buffer): PgOutputMessage {
  const r = new Reader(buf);
  const tag = String.fromCharCode(r.u8());
  switch (tag) {
    case 'B':
      return { tag: 'begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
    case 'C': {
      r.u8(); // flags
      return { tag: 'commit', commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    }
    case 'R': {
      const relid = r.u32();
      const schema = r.str();
      const name = r.str();
      const replicaIdentity = String.fromCharCode(r.u8());
      const n = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        columns.push({ key: (flags & 1) === 1, name: r.str(), typeOid: r.u32(), typmod: r.i32() });
      }
      return { tag: 'relation', relid, schema, name, replicaIdentity, columns };
    }
    case 'I': {
      const relid = r.u32();
      r.u8(); // 'N'
      return { tag: 'insert', relid, row: r.tuple() };
    }
    case 'U': {
      const relid = r.u32();
      let kind = String.fromCharCode(r.u8());
      let old: TupleValue[] | undefined;
      let oldKind: 'key' | 'full' | undefined;
      if (kind === 'K' || kind === 'O') {
        oldKind = kind === 'K' ? 'key' : 'full';
        old = r.tuple();
        kind = String.fromCharCode(r.u8());
      }
      if (kind !== 'N') throw new Error(`pgoutput: unexpected update tuple kind ${kind}`);
      return { tag: 'update', relid, row: r.tuple(), old, oldKind };
    }
    case 'D': {
      const relid = r.u32();
      const kind = String.fromCharCode(r.u8());
      return { tag: 'delete', relid, oldKind: kind === 'K' ? 'key' : 'full', old: r.tuple() };
    }
    case 'T': {
      const n = r.i32();
      const options = r.u8();
      const relids: number[] = [];
      for (let i = 0; i < n; i++) relids.push(r.u32());
      return { tag: 'truncate', relids, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
    }
    default:
      return { tag: 'other', code: tag };
  }
}

/** An LSN as PostgreSQL writes it (`16/B374D848`). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Parse PostgreSQL's LSN text; undefined when it is not one. */
export function parseLsn(text: string): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch). */
export const PG_EPOCH_MICROS = 946_684_800_000_000n;
