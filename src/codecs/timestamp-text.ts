import { civilFromDays, daysFromCivil } from '../values/civil-days.js';
import { Timestamp } from '../values/timestamp.js';

/*
 * Fast paths for the timestamp texts the row paths read and write millions of times: PostgreSQL's output with
 * DateStyle ISO and TimeZone UTC (`2024-03-01 12:34:56.123456+00`) and the ISO-8601 text of the NDJSON codec
 * (`2024-03-01T12:34:56.123456Z`). They use Number arithmetic on the character codes (no regular expression, no
 * bigint division) for years 1700–2250, where microseconds since 1970 are safe integers, and return `undefined`
 * for anything else (another year, BC, an offset other than UTC, 24:00, a leap second, ±infinity) so the caller
 * takes the exact general path (`Timestamp.parse`, `toISOString`, `toPostgres`). Results are identical.
 */

const MICROS_PER_DAY = 86_400_000_000;
/** 1700-01-01 and 2251-01-01 in microseconds since 1970: the range of the fast paths (well inside 2^53). */
const MIN_FAST = -8_520_336_000_000_000;
const MAX_FAST = 8_867_491_200_000_000;
const PAD2 = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : String(i)));

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Two ASCII digits at `i` as a number, or -1. */
function d2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * Whether `s` is `YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}]` followed by exactly `suffix` (`'+00'`, `'Z'` or `''`), a valid
 * calendar date and time of the years 1700–2250 (the fast range): the texts {@link fastMicros} reads. No arithmetic.
 */
export function isFastTimestampText(s: string, suffix: string): boolean {
  const n = s.length;
  if (n < 19 + suffix.length || n > 26 + suffix.length) return false;
  const c10 = s.charCodeAt(10);
  if (
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (c10 !== 32 && c10 !== 84) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return false;
  const y1 = d2(s, 0);
  const y2 = d2(s, 2);
  const month = d2(s, 5);
  const day = d2(s, 8);
  const hour = d2(s, 11);
  const minute = d2(s, 14);
  const second = d2(s, 17);
  if (y1 < 17 || y1 > 22 || y2 < 0 || (y1 === 22 && y2 > 50) || month < 1 || month > 12 || day < 1) return false;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return false;
  if (day > daysInMonth(y1 * 100 + y2, month)) return false;
  const end = n - suffix.length;
  if (suffix.length > 0 && !s.endsWith(suffix)) return false;
  if (end > 19) {
    if (s.charCodeAt(19) !== 46 || end === 20) return false;
    for (let i = 20; i < end; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return false;
    }
  }
  return true;
}

/** Two ASCII digits at `i` of bytes as a number, or -1. */
function b2(s: Uint8Array, i: number): number {
  const a = s[i] - 48;
  const b = s[i + 1] - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * {@link isFastTimestampText} on the UTF-8 bytes `s[from, to)`, `suffix` given as ASCII: the same texts, for
 * transcoders that work on bytes (docs/decisions/0008-transcoded-row-paths.md).
 */
export function isFastTimestampBytes(s: Uint8Array, from: number, to: number, suffix: string): boolean {
  const n = to - from;
  const sl = suffix.length;
  if (n < 19 + sl || n > 26 + sl) return false;
  for (let k = 0; k < sl; k++) if (s[to - sl + k] !== suffix.charCodeAt(k)) return false;
  const c10 = s[from + 10];
  if (
    s[from + 4] !== 45 ||
    s[from + 7] !== 45 ||
    (c10 !== 32 && c10 !== 84) ||
    s[from + 13] !== 58 ||
    s[from + 16] !== 58
  )
    return false;
  const y1 = b2(s, from);
  const y2 = b2(s, from + 2);
  const month = b2(s, from + 5);
  const day = b2(s, from + 8);
  const hour = b2(s, from + 11);
  const minute = b2(s, from + 14);
  const second = b2(s, from + 17);
  if (y1 < 17 || y1 > 22 || y2 < 0 || (y1 === 22 && y2 > 50) || month < 1 || month > 12 || day < 1) return false;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return false;
  if (day > daysInMonth(y1 * 100 + y2, month)) return false;
  const end = to - sl;
  if (end > from + 19) {
    if (s[from + 19] !== 46 || end === from + 20) return false;
    for (let i = from + 20; i < end; i++) {
      const c = s[i] - 48;
      if (c < 0 || c > 9) return false;
    }
  }
  return true;
}

/**
 * {@link fastMicros} on the UTF-8 bytes `b[p, q)` (suffix `+00` when `zoned`): µs since 1970, or NaN when the text is
 * not of the fast form or outside 1700–2250. For transcoders that work on bytes.
 */
export function fastMicrosOfBytes(b: Uint8Array, p: number, q: number, zoned: boolean): number {
  const suffix = zoned ? '+00' : '';
  if (!isFastTimestampBytes(b, p, q, suffix)) return Number.NaN;
  const end = q - suffix.length;
  let micros = 0;
  let scale = 100_000;
  for (let i = p + 20; i < end; i++) {
    micros += (b[i] - 48) * scale;
    scale /= 10;
  }
  const v =
    daysFromCivil(b2(b, p) * 100 + b2(b, p + 2), b2(b, p + 5), b2(b, p + 8)) * MICROS_PER_DAY +
    (b2(b, p + 11) * 3600 + b2(b, p + 14) * 60 + b2(b, p + 17)) * 1_000_000 +
    micros;
  return v >= MIN_FAST && v < MAX_FAST ? v : Number.NaN;
}

/**
 * `YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}]` followed by exactly `suffix` (`'+00'`, `'Z'` or `''`): microseconds since
 * 1970, or `undefined` when the text is not of that form or out of the fast range (years 1700–2250).
 */
export function fastMicros(s: string, suffix: string): number | undefined {
  if (!isFastTimestampText(s, suffix)) return undefined;
  const year = d2(s, 0) * 100 + d2(s, 2);
  const end = s.length - suffix.length;
  let micros = 0;
  let scale = 100_000;
  for (let i = 20; i < end; i++) {
    micros += (s.charCodeAt(i) - 48) * scale;
    scale /= 10;
  }
  const v =
    daysFromCivil(year, d2(s, 5), d2(s, 8)) * MICROS_PER_DAY +
    (d2(s, 11) * 3600 + d2(s, 14) * 60 + d2(s, 17)) * 1_000_000 +
    micros;
  return v >= MIN_FAST && v < MAX_FAST ? v : undefined;
}

/** `timestamptz` text as PostgreSQL prints it in UTC (`…+00`, `BC`, `infinity`) → zoned Timestamp. @throws RangeError */
export function parsePgTimestamptz(s: string): Timestamp {
  const v = fastMicros(s, '+00');
  return v === undefined ? Timestamp.parse(s, { zoned: true }) : Timestamp.fromEpochMicros(v, { zoned: true });
}

/** `timestamp` (without time zone) text as PostgreSQL prints it → unzoned Timestamp. @throws RangeError */
export function parsePgTimestamp(s: string): Timestamp {
  const v = fastMicros(s, '');
  return v === undefined ? Timestamp.parse(s, { zoned: false }) : Timestamp.fromEpochMicros(v, { zoned: false });
}

/** The NDJSON payload of a Timestamp (`timestampText`): ISO-8601 with 6 digits, `Z` when zoned. @throws RangeError */
export function parseIsoTimestamp(s: string): Timestamp | undefined {
  const zoned = s.charCodeAt(s.length - 1) === 90; // 'Z'
  const v = fastMicros(s, zoned ? 'Z' : '');
  return v === undefined ? undefined : Timestamp.fromEpochMicros(v, { zoned });
}

/** Calendar fields of microseconds in the fast range: `YYYY-MM-DD`, `HH:MM:SS` and the microseconds. */
function fields(v: number): [date: string, time: string, micros: number] {
  const days = Math.floor(v / MICROS_PER_DAY);
  const rem = v - days * MICROS_PER_DAY;
  const [year, month, day] = civilFromDays(days);
  const secs = Math.floor(rem / 1_000_000);
  const micros = rem - secs * 1_000_000;
  const date = `${PAD2[Math.floor(year / 100)]}${PAD2[year % 100]}-${PAD2[month]}-${PAD2[day]}`;
  const time = `${PAD2[Math.floor(secs / 3600)]}:${PAD2[Math.floor(secs / 60) % 60]}:${PAD2[secs % 60]}`;
  return [date, time, micros];
}

/** Microseconds of a finite Timestamp in the fast range, else `undefined`. */
function fastValue(t: Timestamp): number | undefined {
  if (t.infinity !== 0) return undefined;
  const e = t.epochMicros;
  return e >= MIN_FAST_BIG && e < MAX_FAST_BIG ? Number(e) : undefined;
}
const MIN_FAST_BIG = BigInt(MIN_FAST);
const MAX_FAST_BIG = BigInt(MAX_FAST);

const micros6 = (m: number) => (m >= 100_000 ? String(m) : String(m + 1_000_000).slice(1));

/** `Timestamp.toISOString()`: ISO-8601 with 6 fractional digits, `Z` when zoned. */
export function isoText(t: Timestamp): string {
  const v = fastValue(t);
  if (v === undefined) return t.toISOString();
  const [date, time, micros] = fields(v);
  return `${date}T${time}.${micros6(micros)}${t.zoned ? 'Z' : ''}`;
}

/** `Timestamp.toPostgres()`: PostgreSQL's own text in UTC (`2024-03-01 12:34:56.1234+00`). */
export function pgText(t: Timestamp): string {
  const v = fastValue(t);
  if (v === undefined) return t.toPostgres();
  const [date, time, micros] = fields(v);
  let s = `${date} ${time}`;
  if (micros !== 0) {
    let m = micros6(micros);
    let end = 6;
    while (m.charCodeAt(end - 1) === 48) end--;
    if (end < 6) m = m.slice(0, end);
    s += `.${m}`;
  }
  return t.zoned ? `${s}+00` : s;
}
