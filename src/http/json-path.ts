import type { Json } from '../contracts/values.js';

/** Value at a dotted path (`'data.items'`); `''` or `'.'` is the value itself; `undefined` when absent. */
export function getPath(value: Json | undefined, path: string): Json | undefined {
  if (path === '' || path === '.') return value;
  let cur: Json | undefined = value;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/** The `rel="next"` target of an RFC 8288 `Link` header, if any. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    const rels = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]!);
    const rel = rels?.[1] ?? rels?.[2] ?? '';
    if (rel.split(/\s+/).includes('next')) return m[1];
  }
  return undefined;
}
