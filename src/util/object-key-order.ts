/**
 * Compare two object keys in UTF-8 byte order — the order S3 lists keys in, and the order every ObjectStore of
 * this package lists them in. JavaScript's `<` compares UTF-16 code units, which differs for characters above
 * U+FFFF versus U+E000–U+FFFF; this comparison agrees with UTF-8 (code point) order.
 * @public
 */
export function compareObjectKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Surrogates (U+D800–U+DFFF, i.e. code points above U+FFFF) sort after U+E000–U+FFFF. */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
