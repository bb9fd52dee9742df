import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonExact, stringifyJsonExact } from '../../src/values/json-exact.js';

describe('parseJsonExact / stringifyJsonExact', () => {
  it('keeps integers beyond 2^53 exactly, as bigint', () => {
    const v = parseJsonExact(
      '{"a": 12345678901234567890, "b": [-9007199254740993, 9007199254740991, 1.5e300], "c": "9007199254740993"}',
    ) as any;
    expect(v.a).toBe(12345678901234567890n);
    expect(v.b).toEqual([-9007199254740993n, 9007199254740991, 1.5e300]);
    expect(v.c).toBe('9007199254740993');
    expect(stringifyJsonExact(v)).toBe(
      '{"a":12345678901234567890,"b":[-9007199254740993,9007199254740991,1.5e+300],"c":"9007199254740993"}',
    );
  });

  it('keeps __proto__ as data and refuses malformed text', () => {
    const v = parseJsonExact('{"__proto__": {"x": 12345678901234567890}}') as any;
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(stringifyJsonExact(v)).toBe('{"__proto__":{"x":12345678901234567890}}');
    expect(() => parseJsonExact('{"a": 12345678901234567890,}')).toThrow(SyntaxError);
    expect(() => parseJsonExact('[1234567890123456789')).toThrow(SyntaxError);
  });

  it('writes bytes as base64, dates as ISO strings', () => {
    expect(stringifyJsonExact({ b: new Uint8Array([1, 2, 255]), d: new Date(0), n: Number.NaN })).toBe(
      '{"b":"AQL/","d":"1970-01-01T00:00:00.000Z","n":null}',
    );
  });

  it('round-trips arbitrary JSON with big integers (property)', () => {
    const big = fc
      .bigInt({ min: -(2n ** 80n), max: 2n ** 80n })
      .map((b) => (b >= -(2n ** 53n) + 1n && b <= 2n ** 53n - 1n ? Number(b) : b));
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.string(),
        big,
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        tie('arr'),
        tie('obj'),
      ),
      arr: fc.array(tie('v'), { maxLength: 4 }),
      obj: fc.dictionary(fc.string(), tie('v'), { maxKeys: 4 }),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        const text = stringifyJsonExact(v as any);
        const back = parseJsonExact(text);
        expect(stringifyJsonExact(back)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('stringifyJsonExact with exact values', () => {
  it('splices JsonText in verbatim and writes Timestamps as ISO text, at any depth', async () => {
    const { JsonText, Timestamp } = await import('../../src/index.js');
    expect(
      stringifyJsonExact({
        raw: new JsonText('{"p": 1.50, "n": 12345678901234567890123}'),
        list: [new JsonText('1.00000000000000000001'), Timestamp.parse('infinity', { zoned: true })],
        at: Timestamp.parse('2024-01-01 00:00:00.000001+00'),
      }),
    ).toBe(
      '{"raw":{"p": 1.50, "n": 12345678901234567890123},"list":[1.00000000000000000001,"infinity"],"at":"2024-01-01T00:00:00.000001Z"}',
    );
    expect(stringifyJsonExact(new JsonText(' [1.0] '))).toBe(' [1.0] ');
  });
});
