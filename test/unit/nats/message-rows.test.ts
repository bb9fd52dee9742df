/** How JetStream messages become rows or rejections, and how a run's schema is inferred and then holds. */
import { describe, expect, it } from 'vitest';
import { JsonText } from '../../../src/index.js';
import { DEFAULT_COLUMNS, MessageRows, RunSchema, type StreamMessage } from '../../../src/nats/message-rows.js';
import { Timestamp } from '../../../src/values/timestamp.js';

const enc = new TextEncoder();
const msg = (data: string | Uint8Array, seq = 7, headers?: Array<[string, string[]]>): StreamMessage => ({
  subject: 'orders.created',
  seq,
  timestampNanos: 1_764_979_200_123_456_789n,
  data: typeof data === 'string' ? enc.encode(data) : data,
  headers,
});

describe('MessageRows', () => {
  it('columns mode: the object members plus subject, stream_seq (bigint), a µs timestamp and headers', () => {
    const rows = new MessageRows('S', 'columns', DEFAULT_COLUMNS, undefined);
    const d = rows.decode(
      msg('{"id": 9007199254740993, "price": 1.5, "tags": ["a"]}', 7, [
        ['x-a', ['1']],
        ['x-b', ['2', '3']],
      ]),
    );
    expect(d.row).toEqual({
      subject: 'orders.created',
      stream_seq: 7n,
      timestamp: Timestamp.fromEpochMicros(1_764_979_200_123_456n),
      headers: { 'x-a': '1', 'x-b': ['2', '3'] },
      id: 9007199254740993n,
      price: 1.5,
      tags: ['a'],
    });
    expect(rows.decode(msg('{}')).row?.headers).toBeNull();
  });

  it('json, text and bytes modes keep the payload as published', () => {
    const json = new MessageRows('S', 'json', DEFAULT_COLUMNS, undefined).decode(msg('{"p": 1.50}')).row!;
    expect(json.payload).toBeInstanceOf(JsonText);
    expect((json.payload as JsonText).text).toBe('{"p": 1.50}');
    expect(new MessageRows('S', 'text', DEFAULT_COLUMNS, undefined).decode(msg('plain')).row!.payload).toBe('plain');
    const bytes = new Uint8Array([0xff, 0x00]);
    expect(new MessageRows('S', 'bytes', DEFAULT_COLUMNS, undefined).decode(msg(bytes)).row!.payload).toEqual(bytes);
  });

  it('rejects what cannot be a row, with stream, subject and sequence', () => {
    const rows = new MessageRows('S', 'columns', DEFAULT_COLUMNS, 15);
    const position = { stream: 'S', subject: 'orders.created', seq: 7 };
    expect(rows.decode(msg('{"a": 1, "b": 22222}')).rejected).toMatchObject({ position, bytes: 20 });
    expect(rows.decode(msg('{x')).rejected?.reason).toMatch(/not valid JSON.*sequence 7/);
    expect(rows.decode(msg('[1]')).rejected?.reason).toMatch(/not a JSON object/);
    expect(rows.decode(msg(new Uint8Array([0xc3]))).rejected?.reason).toMatch(/UTF-8/);
    expect(rows.decode(msg('{"subject":1}')).rejected?.reason).toMatch(/metadata column/);
    // a payload under the limit whose row (with the metadata columns) is over it: rejected here, with its position
    const near = new MessageRows('S', 'columns', DEFAULT_COLUMNS, 60);
    expect(near.decode(msg('{"a": "0123456789"}')).rejected).toMatchObject({
      position,
      reason: expect.stringMatching(/^Row is about \d+ bytes/),
    });
    const renamed = new MessageRows('S', 'columns', { ...DEFAULT_COLUMNS, subject: 'nats_subject' }, undefined);
    expect(renamed.decode(msg('{"subject":1}')).row).toMatchObject({ subject: 1, nats_subject: 'orders.created' });
  });
});

describe('RunSchema', () => {
  const rows = new MessageRows('S', 'columns', DEFAULT_COLUMNS, undefined);
  it('infers the union of the first pull, types by value, json where values disagree', () => {
    const schema = new RunSchema(rows.metaFields());
    const s = schema.infer([
      { a: 1, b: null, c: 'x' },
      { a: 2, b: true, c: 3, d: 5n },
    ]);
    expect(s.fields.map((f) => [f.name, f.type])).toEqual([
      ['subject', 'string'],
      ['stream_seq', 'int64'],
      ['timestamp', 'timestamp'],
      ['headers', 'json'],
      ['a', 'float64'],
      ['b', 'boolean'],
      ['c', 'json'],
      ['d', 'int64'],
    ]);
    expect(schema.misfit({ subject: 's', a: 3, b: null, c: [1] })).toBeUndefined();
    expect(schema.misfit({ a: 'three' })).toBe('a');
    expect(schema.misfit({ a: 1, e: 1 })).toBe('e');
  });
});
