import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { float4Text } from '../../../src/mysql/values.js';

describe('float4Text: a MySQL FLOAT read as a DOUBLE → the shortest text of the float4', () => {
  it('gives the float4 back, in as few digits as any text that does', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const t = float4Text(Object.is(x, -0) ? '-0' : String(x)); // the server prints -0 as '-0'
        expect(Object.is(Math.fround(Number(t)), x)).toBe(true);
        const digits = (s: string) =>
          s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
        if (x !== 0) expect(digits(t)).toBeLessThanOrEqual(digits(x.toPrecision(9)));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads what the server prints for a FLOAT cast to DOUBLE', () => {
    expect(float4Text('0.10000000149011612')).toBe('0.1');
    expect(float4Text('16777216')).toBe('16777216');
    expect(float4Text('3.4028234663852886e38')).toBe('3.4028235e+38');
    expect(float4Text('1.401298464324817e-45')).toBe('1e-45');
    expect(float4Text('-0')).toBe('-0');
  });
});
