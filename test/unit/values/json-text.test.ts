import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonText, Timestamp } from '../../../src/index.js';

describe('JsonText', () => {
  it('keeps the text exactly: decimals, huge integers, whitespace, key order, duplicate keys', () => {
    const texts = [
      '1.50',
      '{"a": 1.00000000000000000001, "b": 12345678901234567890123}',
      '[ 1 ,2,  3 ]',
      '{"z":1,"a":2,"z":3}',
      '"ü😀\\u0000"',
      '-0',
      '1e400',
    ];
    for (const t of texts) {
      const j = new JsonText(t);
      expect(j.text).toBe(t);
      expect(String(j)).toBe(t);
      expect(j.equals(new JsonText(t))).toBe(true);
    }
    expect(new JsonText('{"a":1}').equals(new JsonText('{"a": 1}'))).toBe(false);
  });

  it('parse() keeps integers beyond 2^53 as bigint and keys as data', () => {
    const v = new JsonText(
      '{"id": 9007199254740993, "n": [1.50, -12345678901234567890], "__proto__": {"x": 1}}',
    ).parse() as Record<string, unknown>;
    expect(v.id).toBe(9007199254740993n);
    expect(v.n).toEqual([1.5, -12345678901234567890n]);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(() => new JsonText('{').parse()).toThrow(SyntaxError);
  });

  it('from() writes a Value exactly: bigint digits, nested JsonText verbatim, Timestamp as ISO', () => {
    const j = JsonText.from({
      id: 12345678901234567890n,
      raw: new JsonText('{"p": 1.50}'),
      at: Timestamp.parse('2024-01-01 00:00:00.000001+00'),
      list: [1, null, 'x'],
    });
    expect(j.text).toBe(
      '{"id":12345678901234567890,"raw":{"p": 1.50},"at":"2024-01-01T00:00:00.000001Z","list":[1,null,"x"]}',
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JsonText.from(v as never).text;
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });

  it('toJSON() lets JSON.stringify write the value', () => {
    expect(JSON.stringify({ j: new JsonText('{"a": [1, 2.5]}') })).toBe('{"j":{"a":[1,2.5]}}');
  });

  it('refuses a non-string and is immutable', () => {
    expect(() => new JsonText(1 as unknown as string)).toThrow(TypeError);
    const j = new JsonText('1');
    expect(Object.isFrozen(j)).toBe(true);
    expect(Object.create({ [Symbol.for('@nucleus/ingestion.JsonText')]: true }) instanceof JsonText).toBe(true);
    expect({ text: '1' } instanceof JsonText).toBe(false);
  });
});
