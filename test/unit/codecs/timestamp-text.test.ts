import { describe, expect, it } from 'vitest';
import {
  fastMicros,
  fastMicrosOfBytes,
  isFastTimestampBytes,
  isFastTimestampText,
  isoText,
  parseIsoTimestamp,
  parsePgTimestamp,
  parsePgTimestamptz,
  pgText,
} from '../../../src/codecs/timestamp-text.js';
import { Timestamp } from '../../../src/values/timestamp.js';

/** The fast paths give exactly what the general Timestamp code gives, inside and outside their range. */
describe('timestamp text fast paths', () => {
  const lo = BigInt(Date.UTC(1650, 0, 1)) * 1000n;
  const hi = BigInt(Date.UTC(2300, 0, 1)) * 1000n;
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const samples: bigint[] = [0n, -1n, 1n, lo, hi, 946684799999999n, 951782400000000n];
  for (let i = 0; i < 20_000; i++) {
    let v = lo + BigInt(Math.floor(rand() * Number(hi - lo)));
    if (i % 3 === 0) v = (v / 1_000_000n) * 1_000_000n + BigInt((i % 7) * 100_000);
    samples.push(v);
  }

  it('writes and reads back what toISOString / toPostgres / Timestamp.parse do', () => {
    for (const v of samples) {
      for (const zoned of [true, false]) {
        const t = Timestamp.fromEpochMicros(v, { zoned });
        expect(isoText(t)).toBe(t.toISOString());
        expect(pgText(t)).toBe(t.toPostgres());
        const back = zoned ? parsePgTimestamptz(t.toPostgres()) : parsePgTimestamp(t.toPostgres());
        expect(back.equals(t)).toBe(true);
        const iso = parseIsoTimestamp(t.toISOString()) ?? Timestamp.parse(t.toISOString(), { zoned });
        expect(iso.equals(t)).toBe(true);
      }
    }
  });

  it('leaves every other text to Timestamp.parse (same result, same errors)', () => {
    for (const s of [
      '2024-02-30 00:00:00+00',
      '2024-01-01 24:00:00+00',
      '2024-01-01 00:00:60+00',
      'infinity',
      '-infinity',
      '2024-01-01 00:00:00.+00',
      '2024-01-01 00:00:00.1234567+00',
      '2024-01-01 00:00:00.1234560+00',
      '2024-01-01 00:00:00+05',
      '0044-03-15 12:00:00+00 BC',
      '12024-01-01 00:00:00+00',
      '2024-01-01',
      '2024-1-01 00:00:00+00',
    ]) {
      const general = (() => {
        try {
          return Timestamp.parse(s, { zoned: true }).toISOString();
        } catch (err) {
          return `error ${(err as Error).message}`;
        }
      })();
      const fast = (() => {
        try {
          return parsePgTimestamptz(s).toISOString();
        } catch (err) {
          return `error ${(err as Error).message}`;
        }
      })();
      expect(fast, s).toBe(general);
    }
    expect(parseIsoTimestamp('2024-01-01T00:00:00.000000+00')).toBeUndefined();
    expect(parseIsoTimestamp('infinityZ')).toBeUndefined();
  });

  it('judges bytes as it judges text (isFastTimestampBytes = isFastTimestampText), on valid and mutated texts', () => {
    const base = [
      '2024-02-29 23:59:59.123456',
      '1700-01-01 00:00:00',
      '2250-12-31 23:59:59.9',
      '2000-01-01T12:00:00.05',
    ];
    const alphabet = '0123456789-: T.+Z9';
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let checked = 0;
    for (const b of base) {
      for (const suffix of ['+00', '', 'Z']) {
        for (let k = 0; k < 3000; k++) {
          let t = b + suffix;
          // 0–2 characters replaced, inserted or removed
          for (let m = rnd(3); m > 0; m--) {
            const at = rnd(t.length + 1);
            const c = alphabet[rnd(alphabet.length)];
            const op = rnd(3);
            t =
              op === 0
                ? t.slice(0, at) + c + t.slice(at + 1)
                : op === 1
                  ? t.slice(0, at) + c + t.slice(at)
                  : t.slice(0, at) + t.slice(at + 1);
          }
          const bytes = Buffer.from(`xx${t}yy`, 'latin1');
          expect(isFastTimestampBytes(bytes, 2, bytes.length - 2, suffix), `${t} (${suffix})`).toBe(
            isFastTimestampText(t, suffix),
          );
          if (suffix !== 'Z') {
            const micros = fastMicrosOfBytes(bytes, 2, bytes.length - 2, suffix === '+00');
            expect(Number.isNaN(micros) ? undefined : micros, t).toBe(fastMicros(t, suffix));
          }
          checked++;
        }
      }
    }
    expect(checked).toBe(36_000);
  });
});
