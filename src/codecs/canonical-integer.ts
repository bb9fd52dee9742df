/* Integer texts that the row paths' number parsers print back unchanged, for transcoders that copy them. */

/**
 * `0` or `-?[1-9][0-9]*` of at most `max` characters: a text that `String(parseInt(t))` (for `max` ≤ 11) and
 * `BigInt(t).toString()` (for `max` ≤ 20) give back unchanged, so a transcoder may copy it as it stands.
 */
export function canonicalInteger(t: string, max: number): boolean {
  const n = t.length;
  if (n === 0 || n > max) return false;
  let i = t.charCodeAt(0) === 45 ? 1 : 0;
  if (i === n) return false;
  if (t.charCodeAt(i) === 48) return n === 1;
  for (; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** {@link canonicalInteger} of the bytes `b[from, to)`. */
export function canonicalIntegerBytes(b: Uint8Array, from: number, to: number, max: number): boolean {
  const n = to - from;
  if (n === 0 || n > max) return false;
  let i = b[from] === 45 ? from + 1 : from;
  if (i === to) return false;
  if (b[i] === 48) return n === 1;
  for (; i < to; i++) {
    const c = b[i];
    if (c < 48 || c > 57) return false;
  }
  return true;
}
