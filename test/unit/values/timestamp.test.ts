import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Timestamp } from '../../../src/index.js';

/** PostgreSQL's range: 4713-01-01 BC (astronomical -4712) to 294276-12-31 23:59:59.999999. */
const PG_MIN_MICROS = -210866803200000000n;
const PG_MAX_MICROS = 9224318015999999999n;
const DATE_MIN_MICROS = -8_640_000_000_000_000_000n;
const DATE_MAX_MICROS = 8_640_000_000_000_000_000n;

const micros = fc.oneof(
  fc.bigInt({ min: PG_MIN_MICROS, max: PG_MAX_MICROS }),
  fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
  fc.constantFrom(0n, -1n, 1n, 999n, -86_400_000_000n, 253402300799999999n, 253402300800000000n, -62135596800000000n),
);

describe('Timestamp.parse', () => {
  it('reads PostgreSQL output: µs, offsets, BC, wide years, infinities', () => {
    const cases: Array<[string, string, boolean]> = [
      ['2024-03-01 12:34:56.123456+00', '2024-03-01T12:34:56.123456Z', true],
      ['2024-03-01 12:34:56.5+05:30', '2024-03-01T07:04:56.500000Z', true],
      ['2024-07-01 09:30:00-02:30', '2024-07-01T12:00:00.000000Z', true],
      ['1799-12-31 20:29:08-03:30:52', '1800-01-01T00:00:00.000000Z', true],
      ['2024-03-01 12:34:56', '2024-03-01T12:34:56.000000', false],
      ['0044-03-15 12:00:00+00 BC', '-000043-03-15T12:00:00.000000Z', true],
      ['0001-01-01 00:00:00 BC', '0000-01-01T00:00:00.000000', false],
      ['4713-01-01 00:00:00 BC', '-004712-01-01T00:00:00.000000', false],
      ['0001-01-01 00:00:00+00', '0001-01-01T00:00:00.000000Z', true],
      ['9999-12-31 23:59:59.999999+00', '9999-12-31T23:59:59.999999Z', true],
      ['10000-01-01 00:00:00+00', '+010000-01-01T00:00:00.000000Z', true],
      ['294276-12-31 23:59:59.999999+00', '+294276-12-31T23:59:59.999999Z', true],
      ['2000-02-29 00:00:00', '2000-02-29T00:00:00.000000', false],
    ];
    for (const [text, iso, zoned] of cases) {
      const t = Timestamp.parse(text);
      expect(t.toISOString(), text).toBe(iso);
      expect(t.zoned, text).toBe(zoned);
      expect(t.isFinite).toBe(true);
    }
  });

  it('reads ISO-8601: T, Z, offsets without colon, signed years, comma fractions, dates', () => {
    expect(Timestamp.parse('2024-03-01T12:34:56Z').epochMicros).toBe(1709296496000000n);
    expect(Timestamp.parse('2024-03-01T12:34:56.000001Z').epochMicros).toBe(1709296496000001n);
    expect(Timestamp.parse('2024-03-01T14:34:56+0200').epochMicros).toBe(1709296496000000n);
    expect(Timestamp.parse('2024-03-01T14:34:56,25+02').epochMicros).toBe(1709296496250000n);
    expect(Timestamp.parse('2024-03-01T12:34Z').epochMicros).toBe(1709296440000000n);
    expect(Timestamp.parse('2024-03-01').toISOString()).toBe('2024-03-01T00:00:00.000000');
    expect(Timestamp.parse('+010000-01-01T00:00:00Z').toPostgres()).toBe('10000-01-01 00:00:00+00');
    expect(Timestamp.parse('-000043-03-15T12:00:00Z').toPostgres()).toBe('0044-03-15 12:00:00+00 BC');
    expect(Timestamp.parse('0000-06-01T00:00:00Z').toPostgres()).toBe('0001-06-01 00:00:00+00 BC');
    // more digits only when they are zeros
    expect(Timestamp.parse('2024-01-01T00:00:00.123456000Z').epochMicros).toBe(1704067200123456n);
  });

  it('reads ±infinity in any case, with the requested kind', () => {
    for (const s of ['infinity', 'Infinity', '+infinity', 'INFINITY']) {
      const t = Timestamp.parse(s, { zoned: true });
      expect(t.infinity).toBe(1);
      expect(t.isFinite).toBe(false);
      expect(t.zoned).toBe(true);
      expect(t.epochMicros).toBe(2n ** 63n - 1n);
      expect(t.toPostgres()).toBe('infinity');
    }
    const n = Timestamp.parse('-infinity');
    expect(n.infinity).toBe(-1);
    expect(n.zoned).toBe(false);
    expect(n.epochMicros).toBe(-(2n ** 63n));
    expect(n.toISOString()).toBe('-infinity');
    expect(JSON.stringify({ n })).toBe('{"n":"-infinity"}');
  });

  it('rolls over 24:00:00 and a leap second as PostgreSQL does', () => {
    expect(Timestamp.parse('2024-12-31 24:00:00').toPostgres()).toBe('2025-01-01 00:00:00');
    expect(Timestamp.parse('2016-12-31 23:59:60+00').toPostgres()).toBe('2017-01-01 00:00:00+00');
  });

  it('zoned: true reads text without offset as UTC; zoned: false refuses an offset', () => {
    const t = Timestamp.parse('2024-03-01 12:00:00', { zoned: true });
    expect(t.zoned).toBe(true);
    expect(t.toISOString()).toBe('2024-03-01T12:00:00.000000Z');
    expect(() => Timestamp.parse('2024-03-01 12:00:00+01', { zoned: false })).toThrow(RangeError);
  });

  it('refuses what is not a timestamp, impossible dates and sub-µs precision', () => {
    const bad = [
      '',
      'now',
      '2024-13-01 00:00:00',
      '2024-02-30',
      '2023-02-29',
      '1900-02-29',
      '2024-01-01 25:00:00',
      '2024-01-01 24:00:01',
      '2024-01-01 12:60:00',
      '2024-01-01 12:00:61',
      '2024-01-01 12:00:00.1234567',
      '0000-01-01 00:00:00 BC',
      '-000043-03-15 BC',
      '2024-01-01 00:00:00+16',
      '24-01-01',
      '2024-01-01 00:00:00 XYZ',
      'infinityx',
    ];
    for (const s of bad) expect(() => Timestamp.parse(s), s).toThrow(RangeError);
    expect(() => Timestamp.parse(1 as unknown as string)).toThrow(TypeError);
  });
});

describe('Timestamp formatting round trips', () => {
  it('toPostgres → parse is the identity over PostgreSQL’s whole range, zoned and not', () => {
    fc.assert(
      fc.property(micros, fc.boolean(), (us, zoned) => {
        const t = Timestamp.fromEpochMicros(us, { zoned });
        const back = Timestamp.parse(t.toPostgres());
        expect(back.equals(t)).toBe(true);
        expect(back.toPostgres()).toBe(t.toPostgres());
      }),
      { numRuns: 2000 },
    );
  });

  it('toISOString → parse is the identity, including wide and negative years', () => {
    fc.assert(
      fc.property(micros, fc.boolean(), (us, zoned) => {
        const t = Timestamp.fromEpochMicros(us, { zoned });
        expect(Timestamp.parse(t.toISOString()).equals(t)).toBe(true);
        expect(Timestamp.parse(JSON.parse(JSON.stringify(t))).equals(t)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with Date to the millisecond wherever a Date reaches', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), fc.integer({ min: 0, max: 999 }), (d, extra) => {
        const t = Timestamp.fromDate(d);
        expect(t.epochMicros).toBe(BigInt(d.getTime()) * 1000n);
        expect(t.toDate().getTime()).toBe(d.getTime());
        // Date's ISO text with three more digits
        expect(t.toISOString()).toBe(d.toISOString().replace('Z', '000Z'));
        // sub-millisecond digits truncate toward the past in toDate()
        const finer = Timestamp.fromEpochMicros(t.epochMicros + BigInt(extra));
        if (finer.epochMicros <= DATE_MAX_MICROS) expect(finer.toDate().getTime()).toBe(d.getTime());
      }),
      { numRuns: 1000 },
    );
  });

  it('reads back what PostgreSQL prints for every offset a session may use', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }),
        fc.integer({ min: -15 * 3600 - 59 * 60 - 59, max: 15 * 3600 + 59 * 60 + 59 }),
        (us, offsetSeconds) => {
          // Print the instant in a zone `offsetSeconds` east of UTC, as PostgreSQL would (+HH[:MM[:SS]]).
          const local = Timestamp.fromEpochMicros(us + BigInt(offsetSeconds) * 1_000_000n, { zoned: false });
          const a = Math.abs(offsetSeconds);
          const hh = String(Math.floor(a / 3600)).padStart(2, '0');
          const mm = String(Math.floor(a / 60) % 60).padStart(2, '0');
          const ss = String(a % 60).padStart(2, '0');
          const off = `${offsetSeconds < 0 ? '-' : '+'}${hh}${a % 3600 ? `:${mm}` : ''}${a % 60 ? `:${ss}` : ''}`;
          const pgText = local.toPostgres().replace(/( BC)?$/, `${off}$1`);
          const t = Timestamp.parse(pgText);
          expect(t.zoned).toBe(true);
          expect(t.epochMicros).toBe(us);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('prints PostgreSQL’s text: trailing zeros trimmed, BC suffix, +00 when zoned', () => {
    expect(Timestamp.fromEpochMicros(1_500_000n).toPostgres()).toBe('1970-01-01 00:00:01.5+00');
    expect(Timestamp.fromEpochMicros(-1n, { zoned: false }).toPostgres()).toBe('1969-12-31 23:59:59.999999');
    expect(Timestamp.fromEpochMicros(-1n, { zoned: false }).toISOString()).toBe('1969-12-31T23:59:59.999999');
    expect(Timestamp.parse('0001-12-31 23:59:59.999999 BC').toPostgres()).toBe('0001-12-31 23:59:59.999999 BC');
    expect(String(Timestamp.parse('2024-01-01 00:00:00+00'))).toBe('2024-01-01T00:00:00.000000Z');
  });
});

describe('Timestamp semantics', () => {
  it('zoned values are UTC instants: the same instant in any offset is equal', () => {
    const a = Timestamp.parse('2024-03-10 01:59:59.999999-05');
    const b = Timestamp.parse('2024-03-10 06:59:59.999999Z');
    const c = Timestamp.parse('2024-03-10 08:29:59.999999+01:30');
    expect(a.equals(b)).toBe(true);
    expect(b.equals(c)).toBe(true);
    // a US DST change does not shift anything: one hour later is 3600 s later
    const d = Timestamp.parse('2024-03-10 03:59:59.999999-04');
    expect(d.epochMicros - a.epochMicros).toBe(3600_000_000n);
  });

  it('unzoned values are wall clocks: no offset, no DST, whatever the process TZ', () => {
    const t = Timestamp.parse('2024-03-10 02:30:00'); // a time that does not exist in America/New_York
    expect(t.toPostgres()).toBe('2024-03-10 02:30:00');
    expect(t.toDate().toISOString()).toBe('2024-03-10T02:30:00.000Z');
    expect(Timestamp.fromDate(t.toDate(), { zoned: false }).equals(t)).toBe(true);
    expect(t.equals(t.withZoned(true))).toBe(false);
    expect(t.compare(t.withZoned(true))).toBe(0);
  });

  it('orders -infinity < finite < infinity; equals needs the same kind', () => {
    const values = [
      Timestamp.infinite(1),
      Timestamp.parse('2024-01-01 00:00:00.000001+00'),
      Timestamp.infinite(-1),
      Timestamp.parse('4713-01-01 00:00:00+00 BC'),
      Timestamp.parse('294276-12-31 23:59:59.999999+00'),
      Timestamp.parse('2024-01-01 00:00:00+00'),
    ];
    const sorted = [...values].sort(Timestamp.compare).map((t) => t.toPostgres());
    expect(sorted).toEqual([
      '-infinity',
      '4713-01-01 00:00:00+00 BC',
      '2024-01-01 00:00:00+00',
      '2024-01-01 00:00:00.000001+00',
      '294276-12-31 23:59:59.999999+00',
      'infinity',
    ]);
    expect(Timestamp.infinite(1).equals(Timestamp.parse('infinity', { zoned: true }))).toBe(true);
    expect(Timestamp.infinite(1).equals(Timestamp.parse('infinity', { zoned: false }))).toBe(false);
    expect(Timestamp.infinite(1).equals('infinity')).toBe(false);
  });

  it('toDate refuses what a Date cannot hold; fromDate refuses an invalid Date', () => {
    expect(() => Timestamp.infinite(1).toDate()).toThrow(RangeError);
    expect(() => Timestamp.infinite(-1).toDate()).toThrow(RangeError);
    expect(() => Timestamp.fromEpochMicros(DATE_MAX_MICROS + 1000n).toDate()).toThrow(RangeError);
    expect(() => Timestamp.fromEpochMicros(DATE_MIN_MICROS - 1000n).toDate()).toThrow(RangeError);
    expect(() => Timestamp.fromDate(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => Timestamp.fromEpochMicros(0.5)).toThrow(RangeError);
  });

  it('is immutable and recognised across package copies by its brand', () => {
    const t = Timestamp.parse('2024-01-01 00:00:00+00');
    expect(Object.isFrozen(t)).toBe(true);
    expect(() => {
      (t as { epochMicros: bigint }).epochMicros = 1n;
    }).toThrow(TypeError);
    const foreign = Object.create({ [Symbol.for('@nucleus/ingestion.Timestamp')]: true });
    expect(foreign instanceof Timestamp).toBe(true);
    expect({} instanceof Timestamp).toBe(false);
    expect((null as unknown) instanceof Timestamp).toBe(false);
  });
});
