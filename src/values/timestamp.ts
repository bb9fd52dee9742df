/*
 * An exact timestamp: microseconds since 1970-01-01 00:00:00 (UTC for a zoned value, the wall clock for an unzoned
 * one) as a bigint, or ±infinity. No dependency, no time-zone database: the proleptic Gregorian calendar only.
 */

import { civilFromDays, daysFromCivil } from './civil-days.js';

const BRAND = Symbol.for('@nucleus/ingestion.Timestamp');

const MICROS_PER_DAY = 86_400_000_000n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Options of {@link Timestamp.parse}, {@link Timestamp.fromDate} and {@link Timestamp.fromEpochMicros}. @public */
export interface TimestampOptions {
  /**
   * `true` for an instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`), `false` for a local date-time without
   * time zone (PostgreSQL `timestamp`, MySQL `DATETIME`).
   * @defaultValue `parse`: whether the text has an offset (`Z`, `+02`, `-03:30`); `fromDate`/`fromEpochMicros`: `true`
   */
  zoned?: boolean;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * `[sign]YYYY-MM-DD[(T| )HH:MM[:SS[.ffffff]]][ ][offset][ BC|AD]`: PostgreSQL's ISO output (years of 4+ digits, `BC`
 * suffix, offsets down to seconds) and ISO-8601 (`T`, `Z`, signed expanded years).
 */
const PATTERN =
  /^([+-])?(\d{4,7})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)? ?(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?(?: (BC|AD|bc|ad))?$/;

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function fail(text: string, why: string): never {
  throw new RangeError(
    `Invalid timestamp ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}: ${why}`,
  );
}

/** Floor division and remainder of a bigint by a positive bigint. */
function floorDivMod(a: bigint, b: bigint): [bigint, bigint] {
  let q = a / b;
  let r = a % b;
  if (r < 0n) {
    q -= 1n;
    r += b;
  }
  return [q, r];
}

/**
 * An exact timestamp to the microsecond, or ±infinity: what PostgreSQL's `timestamp`/`timestamptz` and MySQL's
 * `DATETIME(6)`/`TIMESTAMP(6)` hold, which a JS `Date` (milliseconds) cannot.
 *
 * - A **zoned** value (`zoned: true`; PostgreSQL `timestamptz`) is an instant: `epochMicros` counts microseconds
 *   since 1970-01-01T00:00:00Z. It prints in UTC (`Z`, `+00`), so no session time zone or DST rule ever changes it.
 * - An **unzoned** value (`zoned: false`; PostgreSQL `timestamp without time zone`) is a wall-clock reading:
 *   `epochMicros` counts microseconds from 1970-01-01 00:00:00 on the same clock, with no offset and no DST.
 * - `±infinity` has {@link Timestamp.infinity} `1`/`-1`; its `epochMicros` is the int64 maximum/minimum (what
 *   PostgreSQL and the Arrow codec store), so sorting by `epochMicros` orders infinities at the ends.
 * - Dates are proleptic Gregorian with astronomical years in `epochMicros`; text uses PostgreSQL's ` BC` suffix
 *   ({@link Timestamp.toPostgres}) or ISO-8601's signed years ({@link Timestamp.toISOString}: year 0 is 1 BC).
 *
 * Instances are immutable. `instanceof Timestamp` also recognises instances made by another copy of this package.
 *
 * @example
 * ```ts
 * import { Timestamp } from '@nucleus/ingestion';
 * const t = Timestamp.parse('2024-03-01 12:34:56.123456+00');
 * t.toISOString();             // '2024-03-01T12:34:56.123456Z'
 * t.epochMicros;               // 1709296496123456n
 * Timestamp.parse('infinity'); // +infinity (unzoned)
 * Timestamp.parse('0044-03-15 12:00:00 BC').toPostgres(); // '0044-03-15 12:00:00 BC'
 * ```
 * @public
 */
export class Timestamp {
  /**
   * Microseconds since 1970-01-01 00:00:00 (UTC when zoned, the wall clock when not); for ±infinity the int64
   * maximum (`2^63 − 1`) or minimum (`−2^63`).
   */
  readonly epochMicros: bigint;
  /** Whether this is an instant (`timestamptz`) rather than a local date-time (`timestamp`). */
  readonly zoned: boolean;
  /** `1` for `infinity`, `-1` for `-infinity`, `0` for a finite value. */
  readonly infinity: -1 | 0 | 1;

  private constructor(epochMicros: bigint, zoned: boolean, infinity: -1 | 0 | 1) {
    this.epochMicros = infinity === 0 ? epochMicros : infinity > 0 ? INT64_MAX : INT64_MIN;
    this.zoned = zoned;
    this.infinity = infinity;
    Object.freeze(this);
  }

  /** True for a {@link Timestamp}, also one made by another copy of this package. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /**
   * Read PostgreSQL's or ISO-8601 text: `2024-03-01 12:34:56.123456+05:30`, `2024-03-01T12:34:56Z`,
   * `2024-03-01 12:34:56` (unzoned), `2024-03-01` (midnight), `0044-03-15 12:00:00+00 BC`, `+010000-01-01T00:00:00Z`,
   * `infinity`, `-infinity`. Up to 6 fractional digits (more only when they are zeros); offsets `Z`, `±HH`,
   * `±HH:MM`, `±HHMM`, `±HH:MM:SS`; `24:00:00` and a leap second `:60` roll over as in PostgreSQL.
   *
   * @param text - the timestamp text.
   * @param options - `zoned: true` reads text without offset as UTC; `zoned: false` refuses text with an offset.
   * @throws RangeError for text that is not such a timestamp, an impossible date or time, or more than microsecond
   * precision.
   */
  static parse(text: string, options: TimestampOptions = {}): Timestamp {
    if (typeof text !== 'string') throw new TypeError(`Timestamp.parse expects a string, got ${typeof text}`);
    const c0 = text.charCodeAt(0);
    // infinity, +infinity, -infinity (any case)
    if (c0 === 105 || c0 === 73 || ((c0 === 43 || c0 === 45) && text.length === 9)) {
      const lower = text.toLowerCase();
      const sign = lower === 'infinity' || lower === '+infinity' ? 1 : lower === '-infinity' ? -1 : 0;
      if (sign !== 0) return new Timestamp(0n, options.zoned ?? false, sign);
    }
    const m = PATTERN.exec(text);
    if (!m) fail(text, 'expected YYYY-MM-DD[ HH:MM:SS[.ffffff]][offset][ BC], ISO-8601, or ±infinity');
    const [, sign, y, mo, d, hh, mi, ss, frac, zulu, offSign, offH, offM, offS, era] = m;
    if (sign && era) fail(text, 'a signed year cannot have an era');
    let year = Number(y);
    if (sign === '-') year = -year;
    if (era && era.toUpperCase() === 'BC') {
      if (year === 0) fail(text, 'there is no year 0 BC');
      year = 1 - year;
    }
    const month = Number(mo);
    const day = Number(d);
    if (month < 1 || month > 12) fail(text, 'month out of range');
    if (day < 1 || day > daysInMonth(year, month)) fail(text, 'day out of range');
    const hour = hh === undefined ? 0 : Number(hh);
    const minute = mi === undefined ? 0 : Number(mi);
    const second = ss === undefined ? 0 : Number(ss);
    let micros = 0;
    if (frac !== undefined) {
      if (frac.length > 6 && !/^0+$/.test(frac.slice(6))) fail(text, 'more than 6 fractional digits (microseconds)');
      micros = Number(frac.slice(0, 6).padEnd(6, '0'));
    }
    if (minute > 59) fail(text, 'minute out of range');
    if (second > 60) fail(text, 'second out of range');
    if (hour > 24 || (hour === 24 && (minute !== 0 || second !== 0 || micros !== 0))) fail(text, 'hour out of range');
    const hasOffset = zulu !== undefined || offSign !== undefined;
    const zoned = options.zoned ?? hasOffset;
    if (!zoned && hasOffset) fail(text, 'a timestamp without time zone has no offset');
    let offsetSeconds = 0;
    if (offSign !== undefined) {
      const oh = Number(offH);
      const om = offM === undefined ? 0 : Number(offM);
      const os = offS === undefined ? 0 : Number(offS);
      if (oh > 15 || om > 59 || os > 59) fail(text, 'offset out of range');
      offsetSeconds = (offSign === '-' ? -1 : 1) * (oh * 3600 + om * 60 + os);
    }
    const days = daysFromCivil(year, month, day);
    const secondsOfDay = hour * 3600 + minute * 60 + second - offsetSeconds;
    const epochMicros = BigInt(days) * MICROS_PER_DAY + BigInt(secondsOfDay * 1_000_000 + micros);
    return new Timestamp(epochMicros, zoned, 0);
  }

  /**
   * The instant of a `Date` (millisecond precision).
   * @param options - `zoned: false` takes the Date's UTC fields as a wall-clock reading. @defaultValue `{ zoned: true }`
   * @throws RangeError for an invalid Date.
   */
  static fromDate(date: Date, options: TimestampOptions = {}): Timestamp {
    const ms = date.getTime();
    if (Number.isNaN(ms)) throw new RangeError('Cannot make a Timestamp of an invalid Date');
    return new Timestamp(BigInt(ms) * 1000n, options.zoned ?? true, 0);
  }

  /**
   * A finite timestamp of microseconds since 1970-01-01 00:00:00.
   * @defaultValue `options.zoned`: `true`
   * @throws RangeError for a number that is not a safe integer.
   */
  static fromEpochMicros(epochMicros: bigint | number, options: TimestampOptions = {}): Timestamp {
    if (typeof epochMicros === 'number' && !Number.isSafeInteger(epochMicros))
      throw new RangeError(`epochMicros must be a safe integer or a bigint, got ${epochMicros}`);
    return new Timestamp(BigInt(epochMicros), options.zoned ?? true, 0);
  }

  /**
   * `infinity` (`sign` 1) or `-infinity` (`sign` -1).
   * @defaultValue `options.zoned`: `true`
   */
  static infinite(sign: 1 | -1, options: TimestampOptions = {}): Timestamp {
    return new Timestamp(0n, options.zoned ?? true, sign < 0 ? -1 : 1);
  }

  /** Order of two timestamps: `-infinity` < every finite value < `infinity`; `zoned` is not compared. */
  static compare(a: Timestamp, b: Timestamp): -1 | 0 | 1 {
    return a.compare(b);
  }

  /** Whether this is a finite timestamp (not ±infinity). */
  get isFinite(): boolean {
    return this.infinity === 0;
  }

  /** The same value, as an instant (`zoned: true`) or as a wall-clock reading (`zoned: false`) of the same fields. */
  withZoned(zoned: boolean): Timestamp {
    return zoned === this.zoned ? this : new Timestamp(this.epochMicros, zoned, this.infinity);
  }

  /**
   * A `Date` of this timestamp, truncated to the millisecond (toward the past). For an unzoned value the Date's UTC
   * fields are the wall-clock reading.
   * @throws RangeError for ±infinity and for values outside the range of a Date (±8.64e15 ms).
   */
  toDate(): Date {
    if (this.infinity !== 0) throw new RangeError(`Cannot represent ${this.toPostgres()} as a Date`);
    const [ms] = floorDivMod(this.epochMicros, 1000n);
    if (ms > 8_640_000_000_000_000n || ms < -8_640_000_000_000_000n)
      throw new RangeError(`Cannot represent ${this.toPostgres()} as a Date`);
    return new Date(Number(ms));
  }

  /** The calendar fields (astronomical year) of a finite value. */
  #fields(): { year: number; month: number; day: number; time: string; micros: number } {
    const [days, rem] = floorDivMod(this.epochMicros, MICROS_PER_DAY);
    const [year, month, day] = civilFromDays(Number(days));
    const r = Number(rem);
    const seconds = Math.floor(r / 1_000_000);
    const micros = r - seconds * 1_000_000;
    const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
    return { year, month, day, time, micros };
  }

  /**
   * ISO-8601 with 6 fractional digits, `Z` when zoned: `2024-03-01T12:34:56.123456Z`, `2024-03-01T12:34:56.000000`
   * (unzoned). Years outside 0000–9999 are signed with 6 digits (`+010000`, `-000043` for 44 BC), as in
   * `Date.prototype.toISOString`. `infinity` / `-infinity` for the infinities.
   */
  toISOString(): string {
    if (this.infinity !== 0) return this.infinity > 0 ? 'infinity' : '-infinity';
    const f = this.#fields();
    const y = f.year >= 0 && f.year <= 9999 ? pad(f.year, 4) : `${f.year < 0 ? '-' : '+'}${pad(Math.abs(f.year), 6)}`;
    return `${y}-${pad(f.month, 2)}-${pad(f.day, 2)}T${f.time}.${pad(f.micros, 6)}${this.zoned ? 'Z' : ''}`;
  }

  /**
   * PostgreSQL's own text for this value (as PostgreSQL prints it with `DateStyle` ISO and `TimeZone` UTC), which
   * PostgreSQL reads back exactly: `2024-03-01 12:34:56.123456+00`, `2024-03-01 12:34:56` (unzoned),
   * `0044-03-15 12:00:00+00 BC`, `infinity`, `-infinity`.
   */
  toPostgres(): string {
    if (this.infinity !== 0) return this.infinity > 0 ? 'infinity' : '-infinity';
    const f = this.#fields();
    const bc = f.year <= 0;
    let s = `${pad(bc ? 1 - f.year : f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)} ${f.time}`;
    if (f.micros !== 0) s += `.${pad(f.micros, 6).replace(/0+$/, '')}`;
    if (this.zoned) s += '+00';
    return bc ? `${s} BC` : s;
  }

  /** {@link Timestamp.toISOString}: what `JSON.stringify` writes. */
  toJSON(): string {
    return this.toISOString();
  }

  /** {@link Timestamp.toISOString}. */
  toString(): string {
    return this.toISOString();
  }

  /** Same value and same `zoned`. */
  equals(other: unknown): boolean {
    return (
      other instanceof Timestamp &&
      other.zoned === this.zoned &&
      other.infinity === this.infinity &&
      other.epochMicros === this.epochMicros
    );
  }

  /** Order: `-1` when this is earlier than `other`, `1` when later, `0` when equal (`zoned` is not compared). */
  compare(other: Timestamp): -1 | 0 | 1 {
    if (this.infinity !== other.infinity) return this.infinity < other.infinity ? -1 : 1;
    if (this.infinity !== 0) return 0;
    return this.epochMicros < other.epochMicros ? -1 : this.epochMicros > other.epochMicros ? 1 : 0;
  }

  /** Shown by `console.log` / `util.inspect`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Timestamp(${this.zoned ? '' : 'local '}${this.toISOString()})`;
  }
}

Object.defineProperty(Timestamp.prototype, BRAND, { value: true });
