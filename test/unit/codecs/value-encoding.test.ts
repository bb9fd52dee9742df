import { describe, expect, it } from 'vitest';
import { decodeTaggedJson, encodeTaggedJson } from '../../../src/codecs/value-encoding.js';
import { IngestError, type Value } from '../../../src/index.js';

const roundTrip = (v: Value) => decodeTaggedJson(encodeTaggedJson(v));

describe('tagged JSON', () => {
  it('writes plain JSON values unchanged', () => {
    const v = { a: 1, b: 'x', c: [true, null, { d: 2.5 }], e: '' };
    expect(encodeTaggedJson(v)).toBe(JSON.stringify(v));
    expect(roundTrip(v)).toEqual(v);
  });

  it('round-trips bigint, Date, bytes and special numbers exactly', () => {
    const v = {
      big: 2n ** 80n,
      neg: -5n,
      when: new Date('2024-02-29T12:34:56.789Z'),
      far: new Date(8.64e15),
      bytes: new Uint8Array([0, 255, 10]),
      nums: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0],
    };
    const out = roundTrip(v) as Record<string, Value>;
    expect(out).toEqual(v);
    expect(typeof out.big).toBe('bigint');
    expect(Object.is((out.nums as number[])[3], -0)).toBe(true);
    expect(Object.is((out.nums as number[])[4], 0)).toBe(true);
    expect(out.bytes).toBeInstanceOf(Uint8Array);
  });

  it('keeps an invalid Date invalid', () => {
    const out = roundTrip({ d: new Date(Number.NaN) }) as { d: Date };
    expect(out.d).toBeInstanceOf(Date);
    expect(Number.isNaN(out.d.getTime())).toBe(true);
  });

  it('escapes user objects that look like tags, at any depth', () => {
    for (const v of [
      { $i: '5' },
      { $d: '2020-01-01T00:00:00.000Z' },
      { $o: { $i: 1 } },
      { $b: 'AA==' },
      [{ $f: 'NaN' }],
      { nested: { $s: 'x' }, two: { $i: '1', other: 1 } },
      '{"$i":"1"}',
    ] as Value[]) {
      expect(roundTrip(v)).toEqual(v);
    }
  });

  it('keeps __proto__ keys as own data properties', () => {
    const v = JSON.parse('{"__proto__":{"polluted":1n},"x":{"__proto__":[1]}}'.replace('1n', '1'));
    (v as Record<string, Value>).big = 1n;
    const out = roundTrip(v) as Record<string, unknown>;
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out.x as object, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(out).toEqual(v);
  });

  it('reports malformed tags and JSON as staging_corrupt', () => {
    for (const text of ['{"a":{"$i":"12x"}}', '{"a":{"$f":"nope"}}', '{"a":{"$d":"not a date"}}', '{"a":']) {
      expect(() => decodeTaggedJson(text)).toThrow(expect.objectContaining({ code: 'staging_corrupt' }));
    }
  });

  it('refuses values that are no Value', () => {
    for (const bad of [() => 1, Symbol('x')]) {
      let err: unknown;
      try {
        encodeTaggedJson({ bad: bad as unknown as Value });
      } catch (e) {
        err = e;
      }
      expect(IngestError.is(err, 'row_rejected')).toBe(true);
    }
  });
});
