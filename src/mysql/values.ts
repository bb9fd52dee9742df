/**
 * The bridge between MySQL's text forms and the library's exact value classes ({@link Timestamp}, {@link JsonText}).
 * @internal
 */
import type { Value } from '../contracts/values.js';
import { civilFromDays, daysFromCivil } from '../values/civil-days.js';
import { Timestamp } from '../values/timestamp.js';
import { JsonText } from '../values/value.js';

/** Why a value cannot be written into a column (a row error naming the column). @internal */
export class ValueRejected extends Error {
  constructor(
    readonly column: string,
    why: string,
  ) {
    super(`column ${JSON.stringify(column)}: ${why}`);
  }
}

/**
 * `2024-01-02 03:04:05.123456` → a Timestamp: DATETIME is a local date-time (unzoned), TIMESTAMP an instant (our
 * sessions run with `time_zone = '+00:00'`, so its text is UTC).
 */
export function timestampFromMySql(text: string, zoned: boolean): Value {
  const micros = fastEpochMicros(text);
  if (micros !== undefined) return Timestamp.fromEpochMicros(micros, { zoned }) as unknown as Value;
  return Timestamp.parse(zoned ? `${text}Z` : text, { zoned });
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Microseconds since 1970-01-01 00:00:00 of the server's `YYYY-MM-DD HH:MM:SS[.f…]` text (the only shape MySQL
 * prints), computed without a regex or a Date (days from the civil date, proleptic Gregorian); `undefined` for any
 * other shape or an invalid date, which then goes through `Timestamp.parse`.
 */
function fastEpochMicros(text: string): bigint | undefined {
  const n = text.length;
  if (n < 19 || n > 26 || (n > 19 && (n === 20 || text[19] !== '.'))) return undefined;
  if (text[4] !== '-' || text[7] !== '-' || text[10] !== ' ' || text[13] !== ':' || text[16] !== ':') return undefined;
  const y = digits(text, 0, 4);
  const m = digits(text, 5, 7);
  const d = digits(text, 8, 10);
  const h = digits(text, 11, 13);
  const mi = digits(text, 14, 16);
  const s = digits(text, 17, 19);
  let f = n > 19 ? digits(text, 20, n) : 0;
  if (y < 0 || m < 1 || m > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 || f < 0)
    return undefined;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  if (d > (m === 2 && leap ? 29 : DAYS_IN_MONTH[m - 1])) return undefined;
  for (let i = n; i < 26 && n > 19; i++) f *= 10;
  const days = daysFromCivil(y, m, d);
  return BigInt(days * 86400 + h * 3600 + mi * 60 + s) * 1_000_000n + BigInt(f);
}

export function jsonText(text: string): Value {
  return new JsonText(text) as unknown as Value;
}

export function isTimestamp(v: unknown): v is Timestamp {
  return v instanceof Timestamp;
}

export function isJsonText(v: unknown): v is JsonText {
  return v instanceof JsonText;
}

const ISO = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z?$/;

/**
 * A Timestamp or Date as MySQL DATETIME/TIMESTAMP text (`YYYY-MM-DD HH:MM:SS.ffffff`; zoned values in UTC).
 * ±infinity and years outside 0000–9999 are refused naming the column.
 */
export function mysqlTimestampText(v: unknown, column: string): string {
  let iso: string;
  if (v instanceof Timestamp) {
    if (!v.isFinite) throw new ValueRejected(column, `MySQL has no ${v.toISOString()} timestamp`);
    const fast = fastMySqlText(v.epochMicros);
    if (fast !== undefined) return fast;
    iso = v.toISOString();
  } else if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new ValueRejected(column, 'invalid Date');
    iso = v.toISOString();
  } else throw new ValueRejected(column, 'not a timestamp');
  const m = ISO.exec(iso);
  if (!m) throw new ValueRejected(column, `${iso} is outside the years MySQL stores`);
  return m[3] ? `${m[1]} ${m[2]}.${m[3]}` : `${m[1]} ${m[2]}`;
}

const MICROS_PER_DAY = 86_400_000_000n;
/** 0001-01-01 and 9999-12-31 23:59:59.999999 in microseconds since 1970: the range of the fast path. */
const FAST_MIN = -62_135_596_800_000_000n;
const FAST_MAX = 253_402_300_799_999_999n;

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/**
 * `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since 1970 (civil from days, H. Hinnant; 6 fractional digits, as
 * `toISOString` prints them), for years 1–9999; else `undefined`.
 */
function fastMySqlText(micros: bigint): string | undefined {
  if (micros < FAST_MIN || micros > FAST_MAX) return undefined;
  let days = micros / MICROS_PER_DAY;
  let rest = micros % MICROS_PER_DAY;
  if (rest < 0n) {
    rest += MICROS_PER_DAY;
    days -= 1n;
  }
  const [y, m, d] = civilFromDays(Number(days));
  const r = Number(rest);
  const secs = Math.floor(r / 1_000_000);
  const us = r % 1_000_000;
  const text = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)} ${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor(secs / 60) % 60, 2)}:${pad(secs % 60, 2)}`;
  return `${text}.${pad(us, 6)}`;
}

/**
 * The shortest decimal text that reads back as the same IEEE float4 (what PostgreSQL prints for `real`): `text` is
 * the float4 value widened to a double (`0.10000000149011612` → `0.1`, `16777216` → `16777216`).
 * @internal
 */
export function float4Text(text: string): string {
  const f = Math.fround(Number(text));
  if (!Number.isFinite(f)) return String(f);
  if (Object.is(f, -0)) return '-0';
  for (let p = 1; p < 9; p++) {
    const t = f.toPrecision(p);
    if (Math.fround(Number(t)) === f) return String(Number(t));
  }
  return String(Number(f.toPrecision(9)));
}
