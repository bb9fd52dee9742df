import type { SourceRejection } from '../contracts/source-endpoint.js';
import type { FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { estimateRowBytes } from '../util/rows.js';
import { Timestamp } from '../values/timestamp.js';
import { JsonText, parseJsonExact } from '../values/value.js';

/** The parts of a JetStream message a row is made of (what `JsMsg` offers, without depending on its type). */
export interface StreamMessage {
  subject: string;
  seq: number;
  timestampNanos: bigint;
  data: Uint8Array;
  headers?: Iterable<[string, string[]]>;
}

/** Names of the metadata columns, resolved. */
export interface MessageColumns {
  subject: string;
  streamSeq: string;
  timestamp: string;
  headers: string | false;
  payload: string;
}

/** @internal */
export const DEFAULT_COLUMNS: MessageColumns = {
  subject: 'subject',
  streamSeq: 'stream_seq',
  timestamp: 'timestamp',
  headers: 'headers',
  payload: 'payload',
};

export type PayloadMode = 'columns' | 'json' | 'text' | 'bytes';

/** What one message became: a row, or a rejection (poison) with its position. */
export type Decoded = { row: Row; rejected?: undefined } | { row?: undefined; rejected: SourceRejection };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Turns JetStream messages into rows: the payload (decoded as `mode` says) plus the subject, the stream sequence
 * (`bigint`), the publish time (a microsecond {@link Timestamp}) and the headers (a JSON object, or `null`). A message
 * that cannot become a row — malformed UTF-8 or JSON, a payload that is not a JSON object in `columns` mode, a member
 * named like a metadata column, a payload over `maxRowBytes` — is a rejection carrying its stream, subject and
 * sequence, so the run's policy can fail or dead-letter it.
 * @internal
 */
export class MessageRows {
  readonly #meta: string[];
  constructor(
    readonly stream: string,
    readonly mode: PayloadMode,
    readonly columns: MessageColumns,
    readonly maxRowBytes: number | undefined,
  ) {
    const c = columns;
    this.#meta = [c.subject, c.streamSeq, c.timestamp, ...(c.headers === false ? [] : [c.headers])];
    if (mode !== 'columns') this.#meta.push(c.payload);
  }

  decode(m: StreamMessage): Decoded {
    const d = this.#decode(m);
    // The pipeline refuses a row whose estimated size is over maxRowBytes, without knowing where it came from; check
    // here (only for payloads that could be near the limit) so the rejection carries the message's position.
    const max = this.maxRowBytes;
    if (d.row && max !== undefined && m.data.byteLength * 2 + 1024 > max) {
      const estimate = estimateRowBytes(d.row);
      if (estimate > max)
        return this.#reject(m, `Row is about ${estimate} bytes, over policy.maxRowBytes ${max}`, estimate);
    }
    return d;
  }

  #decode(m: StreamMessage): Decoded {
    const bytes = m.data.byteLength;
    if (this.maxRowBytes !== undefined && bytes > this.maxRowBytes) {
      return this.#reject(m, `Payload is ${bytes} bytes, over policy.maxRowBytes ${this.maxRowBytes}`, bytes);
    }
    const c = this.columns;
    const row: Row = {};
    row[c.subject] = m.subject;
    row[c.streamSeq] = BigInt(m.seq);
    row[c.timestamp] = Timestamp.fromEpochMicros(m.timestampNanos / 1000n);
    if (c.headers !== false) row[c.headers] = headersOf(m.headers);
    if (this.mode === 'bytes') {
      row[c.payload] = m.data;
      return { row };
    }
    let text: string;
    try {
      text = utf8.decode(m.data);
    } catch {
      return this.#reject(m, 'Payload is not valid UTF-8');
    }
    if (this.mode === 'text') {
      row[c.payload] = text;
      return { row };
    }
    let value: Value;
    try {
      value = parseJsonExact(text);
    } catch (err) {
      return this.#reject(m, `Payload is not valid JSON (${(err as Error).message})`);
    }
    if (this.mode === 'json') {
      row[c.payload] = new JsonText(text);
      return { row };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return this.#reject(m, 'Payload is not a JSON object (payload mode "columns" needs one)');
    }
    for (const key of Object.keys(value)) {
      if (this.#meta.includes(key)) {
        return this.#reject(
          m,
          `Payload member "${key}" has the name of a metadata column (rename the column with the source's \`columns\` option)`,
        );
      }
      row[key] = (value as Record<string, Value>)[key];
    }
    return { row };
  }

  /** The fixed part of the schema: the metadata columns (and the payload column unless `columns` mode). */
  metaFields(): RecordSchema['fields'] {
    const c = this.columns;
    const fields: RecordSchema['fields'] = [
      { name: c.subject, type: 'string', nullable: false },
      { name: c.streamSeq, type: 'int64', nullable: false },
      { name: c.timestamp, type: 'timestamp', nullable: false },
    ];
    if (c.headers !== false) fields.push({ name: c.headers, type: 'json', nullable: true });
    if (this.mode !== 'columns') {
      fields.push({
        name: c.payload,
        type: this.mode === 'bytes' ? 'binary' : this.mode === 'text' ? 'string' : 'json',
        nullable: false,
      });
    }
    return fields;
  }

  #reject(m: StreamMessage, reason: string, bytes?: number): Decoded {
    return {
      rejected: {
        reason: `${reason} (stream ${this.stream}, subject ${m.subject}, sequence ${m.seq})`,
        position: { stream: this.stream, subject: m.subject, seq: m.seq },
        ...(bytes !== undefined ? { bytes } : {}),
      },
    };
  }
}

function headersOf(h: Iterable<[string, string[]]> | undefined): Value {
  if (!h) return null;
  const out: Record<string, Value> = {};
  let any = false;
  for (const [k, vs] of h) {
    out[k] = vs.length === 1 ? vs[0] : vs;
    any = true;
  }
  return any ? out : null;
}

/**
 * The schema of one run in `columns` mode: inferred from the run's first pulled batch (the union of its members,
 * each typed by its values: `int64` for integers beyond 2^53, `float64` for numbers, `boolean`, `string`, `json` for
 * objects, arrays and members whose values disagree; `string` when only `null` was seen), then fixed. A later message
 * with a member outside it, or a value that does not fit its type, ends the run before that message: the next run
 * starts there and infers a schema that holds it, which the sink's schema contract then sees as a change.
 * @internal
 */
export class RunSchema {
  #fields: Map<string, FieldType | undefined> | undefined;
  constructor(readonly meta: RecordSchema['fields']) {}

  get fixed(): boolean {
    return this.#fields !== undefined;
  }

  /** Fix the schema from a batch of rows (metadata columns excluded). */
  infer(rows: Row[]): RecordSchema {
    const metaNames = new Set(this.meta.map((f) => f.name));
    const fields = new Map<string, FieldType | undefined>();
    const mixed = new Set<string>();
    for (const row of rows) {
      for (const [k, v] of Object.entries(row)) {
        if (metaNames.has(k)) continue;
        const t = v === null || v === undefined ? undefined : typeOf(v);
        const had = fields.get(k);
        if (!fields.has(k) || had === undefined) fields.set(k, t);
        else if (t !== undefined && t !== had && !mixed.has(k)) {
          fields.set(k, 'json');
          mixed.add(k);
        }
      }
    }
    this.#fields = fields;
    return this.schema();
  }

  schema(): RecordSchema {
    return {
      fields: [
        ...this.meta,
        ...[...(this.#fields ?? [])].map(([name, type]) => ({ name, type: type ?? 'string', nullable: true })),
      ],
    };
  }

  /** Whether `row` fits the fixed schema; otherwise the member that does not. */
  misfit(row: Row): string | undefined {
    const fields = this.#fields!;
    for (const [k, v] of Object.entries(row)) {
      if (!fields.has(k)) {
        if (this.meta.some((f) => f.name === k)) continue;
        return k;
      }
      if (v === null || v === undefined) continue;
      const want = fields.get(k) ?? 'string';
      if (want === 'json') continue;
      if (typeOf(v) !== want) return k;
    }
    return undefined;
  }
}

function typeOf(v: Value): FieldType {
  if (typeof v === 'bigint') return 'int64';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  return 'json';
}
