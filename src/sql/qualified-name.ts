import { IngestError } from '../errors/ingest-error.js';

/**
 * Split a unit id or table reference `first.table` into its two parts; either part may be quoted with `quote`
 * (`"` for PostgreSQL, `` ` `` for MySQL, doubled inside). An unquoted first part ends at the first dot; the rest is
 * the table name as is. Without a dot, `[defaultFirst, ref]` when `defaultFirst` is given. Each dialect's
 * `parseTableName` checks the parts with its own identifier rules.
 * @throws IngestError `config_invalid` naming the reference (`level` is `schema` or `database` in messages).
 * @internal
 */
export function splitQualifiedName(
  ref: string,
  quote: '"' | '`',
  level: 'schema' | 'database',
  defaultFirst?: string,
): { first: string; name: string; defaulted: boolean } {
  const bad = (why: string) =>
    new IngestError('config_invalid', `${why} in ${JSON.stringify(ref)}`, { details: { unitId: ref } });
  const readPart = (i: number): [string, number] => {
    if (ref[i] !== quote) {
      const dot = ref.indexOf('.', i);
      return dot < 0 ? [ref.slice(i), ref.length] : [ref.slice(i, dot), dot];
    }
    let out = '';
    for (let j = i + 1; j < ref.length; j++) {
      if (ref[j] !== quote) out += ref[j];
      else if (ref[j + 1] === quote) out += ref[++j];
      else return [out, j + 1];
    }
    throw bad('Unterminated quoted identifier');
  };
  const [first, rest] = readPart(0);
  if (rest === ref.length) {
    if (defaultFirst !== undefined) return { first: defaultFirst, name: first, defaulted: true };
    throw new IngestError('config_invalid', `Expected ${JSON.stringify(ref)} to be '${level}.table'`, {
      details: { unitId: ref },
    });
  }
  if (ref[rest] !== '.') throw bad(`Expected a '.' after the ${level}`);
  if (ref[rest + 1] !== quote) return { first, name: ref.slice(rest + 1), defaulted: false };
  const [name, end] = readPart(rest + 1);
  if (end !== ref.length) throw bad('Unexpected text after the table name');
  return { first, name, defaulted: false };
}
