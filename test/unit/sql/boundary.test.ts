/**
 * The pure part of the ADR-0005 boundary algorithm (src/sql/boundary.ts): fingerprint multisets, the checkpoint
 * codec, and the regions a read takes, written with a fake dialect so the SQL reads plainly. No I/O.
 */
import { describe, expect, it } from 'vitest';
import { IngestError } from '../../../src/errors/ingest-error.js';
import {
  decodeSeen,
  dedupeFilter,
  encodeSeen,
  FP,
  multiset,
  Params,
  parseCheckpoint,
  readParts,
  regions,
  sliceQueries,
} from '../../../src/sql/boundary.js';
import type { SourceUnit } from '../../../src/sql/source-dialect.js';

interface Col {
  name: string;
  type: string;
  sentinels?: string;
}

const dialect = (tupleCompare: 'row' | 'expanded', sqlDedupe = false) => ({
  quote: (n: string) => `"${n}"`,
  param: (i: number) => `$${i}`,
  cast: (p: string, c: Col) => `${p}::${c.type}`,
  sentinels: (c: Col) => c.sentinels,
  tupleCompare,
  fingerprint: (refs: string[]) => `fp(${refs.join(', ')})`,
  dedupeSql: sqlDedupe ? (names: string[], fp: string, from: string) => `DEDUPE(${names}; ${fp}; ${from})` : undefined,
});

const id: Col = { name: 'id', type: 'int' };
const day: Col = { name: 'day', type: 'date', sentinels: "'infinity'" };
const seq: Col = { name: 'seq', type: 'int' };
const v: Col = { name: 'v', type: 'text' };

const unit = (cursor: Col[], key: Col[] = [id]): SourceUnit<Col> => ({
  unitId: 's.t',
  info: { schema: 's', name: 't', kind: 'table', columns: [id, day, seq, v], primaryKey: ['id'] },
  table: '"s"."t"',
  columns: [id, v],
  cursor,
  key,
  fingerprint: [id, day, seq, v],
  schema: { fields: [] },
  boundaryMaxRows: 100,
});

const fp = (n: number) => n.toString(16).padStart(16, '0');
const hex = (seen: string) => [...decodeSeen(seen)].flatMap(([k, n]) => Array.from({ length: n }, () => k));

describe('fingerprint multisets', () => {
  it('encode sorted 8-byte fingerprints as base64 (one per copy) and decode them back', () => {
    const seen = encodeSeen(multiset([fp(3), fp(1), fp(3)]));
    expect(Buffer.from(seen, 'base64').length).toBe(24);
    expect(hex(seen).sort()).toEqual([fp(1), fp(3), fp(3)]);
    expect(decodeSeen(seen).get(fp(3))).toBe(2);
    expect(encodeSeen(new Map())).toBe('');
  });

  it('a dedupe drops the copies already seen and keeps at most the copies expected', () => {
    const keepAfterSeen = dedupeFilter({ seen: encodeSeen(multiset([fp(1)])), expect: null });
    expect([fp(1), fp(1), fp(2)].map(keepAfterSeen)).toEqual([false, true, true]);
    const planned = dedupeFilter({ seen: encodeSeen(multiset([fp(1)])), expect: encodeSeen(multiset([fp(1), fp(1)])) });
    // fp(2) committed after the plan waits for the next run; a third copy of fp(1) too
    expect([fp(1), fp(2), fp(1), fp(1)].map(planned)).toEqual([false, false, true, false]);
  });
});

describe('parseCheckpoint', () => {
  const parse = (ck: unknown) => parseCheckpoint('s.t', ['day'], ['id'], ck);
  const code = (ck: unknown) => {
    try {
      parse(ck);
      return 'ok';
    } catch (err) {
      return IngestError.is(err) ? `${err.code}${err.retryable ? ' retryable' : ''}` : 'other';
    }
  };
  const v2 = { version: 2, columns: ['day'], values: ['2024-01-02'], from: ['2024-01-01'], seen: '', seenRows: 0 };

  it('reads version 2 and version 1 (with or without a key tie-breaker)', () => {
    expect(parse(v2)).toEqual({ version: 2, values: ['2024-01-02'], from: ['2024-01-01'], seen: '' });
    expect(parse({ ...v2, values: null, from: null })).toMatchObject({ values: null, from: null });
    expect(parse({ columns: ['day'], values: ['2024-01-02'], key: null })).toEqual({
      version: 1,
      values: ['2024-01-02'],
      key: null,
    });
    expect(parse({ columns: ['day'], values: ['x'], key: { columns: ['id'], values: ['7'] } })).toMatchObject({
      key: ['7'],
    });
  });

  it('reads version 3: a tie group kept by its greatest key (`byKey`) instead of fingerprints', () => {
    const v3 = { ...v2, version: 3, from: ['2024-01-02'], byKey: { columns: ['id'], ties: ['70'], special: ['9'] } };
    expect(parse(v3)).toEqual({
      version: 3,
      values: ['2024-01-02'],
      from: ['2024-01-02'],
      seen: '',
      tieKey: ['70'],
      specialKey: ['9'],
    });
    expect(parse({ ...v3, byKey: { columns: ['id'], special: ['9'] } })).not.toHaveProperty('tieKey');
    for (const bad of [
      { ...v3, byKey: undefined },
      { ...v3, byKey: { columns: ['id'] } },
      { ...v3, byKey: { columns: ['other'], ties: ['1'] } },
      { ...v3, byKey: { columns: ['id'], ties: ['1', '2'] } },
      // a key position for the ties needs the window to be the ties
      { ...v3, from: ['2024-01-01'] },
      { ...v2, byKey: undefined, version: 4 },
    ])
      expect(code(bad), JSON.stringify(bad)).toBe('checkpoint_invalid');
  });

  it('refuses what does not fit the unit with checkpoint_invalid (not retryable)', () => {
    for (const bad of [
      'x',
      [],
      { ...v2, columns: ['other'] },
      { ...v2, from: null },
      { ...v2, values: null },
      { ...v2, seen: 'not base64!' },
      { ...v2, seen: Buffer.alloc(5).toString('base64') },
      { ...v2, version: 3 },
      { columns: ['day'], values: [''], key: { columns: ['other'], values: ['1'] } },
      { columns: ['day'], values: [null], key: null },
    ])
      expect(code(bad), JSON.stringify(bad)).toBe('checkpoint_invalid');
  });
});

describe('regions', () => {
  it('compares cursor tuples as ROW(…) or spelled out for index ranges, each parameter cast to its column', () => {
    const row = regions(dialect('row'), unit([day, seq]));
    const p = new Params(dialect('row'));
    expect(row.compare([day, seq], '>', ['d', '1'], p)).toBe('ROW(t."day", t."seq") > ROW($1::date, $2::int)');
    const ex = regions(dialect('expanded'), unit([day, seq]));
    const q = new Params(dialect('expanded'));
    expect(ex.compare([day, seq], '<=', ['d', '1'], q)).toBe(
      '((t."day" < $1::date) OR (t."day" = $2::date AND t."seq" <= $3::int))',
    );
    expect(q.values).toEqual(['d', 'd', '1']);
    expect(ex.special).toBe(`(t."day" IS NULL OR t."day" IN ('infinity') OR t."seq" IS NULL)`);
  });
});

describe('readParts', () => {
  const d = dialect('row');
  const fresh = () => new Params(d);
  const u = unit([day]);
  const resume = { values: ['2024-01-02'], from: ['2024-01-02'], seen: encodeSeen(multiset([fp(9)])) };

  it('an unplanned read takes the rows after the checkpoint, and its window and the special rows deduped', () => {
    const parts = readParts(d, u, resume, undefined, fresh);
    expect(parts.map((x) => x.dedupe)).toEqual([undefined, { seen: resume.seen, expect: null }]);
    expect(parts[0].where).toContain('t."day" > $1::date');
    expect(parts[1].where[0]).toMatch(/^\(\(t."day" >= \$1::date AND t."day" <= \$2::date\) OR \(t."day" IS NULL/);
    // a first run has nothing to dedupe
    expect(readParts(d, u, null, undefined, fresh).map((x) => x.dedupe)).toEqual([undefined, undefined]);
  });

  it('a planned slice reads its key range below the window, and the window with the fingerprints the plan saw', () => {
    const bounds = {
      planned: true,
      main: true,
      boundary: true,
      from: ['2024-01-03'],
      upper: ['2024-01-04'],
      expect: 'AA',
      pkGt: '10',
      pkLe: '20',
    };
    const parts = readParts(d, u, resume, bounds, fresh);
    expect(parts).toHaveLength(3);
    expect(parts[0].where.join(' AND ')).toContain('t."day" < $2::date AND t."id" > $3::int AND t."id" <= $4::int');
    expect(parts[1].dedupe).toEqual({ seen: resume.seen, expect: null });
    expect(parts[2].dedupe).toEqual({ seen: resume.seen, expect: 'AA' });
    // the first range also takes NULL keys; a cursorless full read is a key range
    const first = readParts(d, unit([]), null, { ...bounds, pkGt: undefined }, fresh);
    expect(first).toEqual([{ where: ['TRUE', '(t."id" <= $1::int OR t."id" IS NULL)'], p: expect.any(Params) }]);
    expect(readParts(d, u, resume, { ...bounds, empty: true }, fresh)).toEqual([]);
  });

  it('a tie group kept by key: read after its key next time, and a planned slice reads up to the key the plan saw', () => {
    const byKey = { values: ['2024-01-02'], from: ['2024-01-02'], seen: encodeSeen(multiset([fp(9)])), tieKey: ['70'] };
    const unplanned = readParts(d, u, byKey, undefined, fresh);
    expect(unplanned[1].where[0]).toMatch(
      /^\(\(\(t."day" >= \$1::date AND t."day" <= \$2::date\) AND t."id" > \$3::int\) OR \(t."day" IS NULL/,
    );
    const specials = readParts(d, u, { ...resume, specialKey: ['5'] }, undefined, fresh);
    expect(specials[1].where[0]).toContain('OR ((t."day" IS NULL OR t."day" IN (\'infinity\')) AND t."id" > $3::int)');
    const bounds = {
      planned: true,
      main: false,
      boundary: true,
      from: ['2024-01-04'],
      upper: ['2024-01-04'],
      expect: 'AA',
      tieKey: ['500'],
    };
    const parts = readParts(d, u, byKey, bounds, fresh);
    // the special rows by fingerprint (with `expect`), the new ties up to the plan's key (deduped only by `seen`)
    expect(parts.map((x) => x.dedupe)).toEqual([
      { seen: byKey.seen, expect: 'AA' },
      { seen: byKey.seen, expect: null },
    ]);
    expect(parts[0].where[0]).toMatch(/^\(FALSE OR \(t."day" IS NULL/);
    expect(parts[1].where[0]).toContain('AND t."id" <= $');
    expect(parts[1].where[0]).toContain('AND t."id" > $'); // the old ties above the old key
    // both groups by key: no part with `expect`; a first run dedupes nothing
    const both = readParts(d, u, null, { ...bounds, specialKey: ['7'] }, fresh);
    expect(both).toHaveLength(1);
    expect(both[0].dedupe).toBeUndefined();
    expect(both[0].where[0]).toMatch(
      /^\(\(\(.*\) AND t."id" <= \$\d+::int\) OR \(\(t."day" IS NULL.*\) AND t."id" <= /,
    );
  });

  it('slices planned by earlier versions read the windows they were planned with', () => {
    // version 1 (both engines): (lower, upper], NULL cursors on a first run
    const pg = readParts(
      d,
      u,
      null,
      { planned: true, lower: null, upper: ['5'], includeNulls: true, pkGt: '3' },
      fresh,
    );
    expect(pg.map((x) => x.where)).toEqual([['(t."day" <= $1::date OR t."day" IS NULL)', 't."id" > $2::int']]);
    const lower = { columns: ['day'], values: ['1'], key: { columns: ['id'], values: ['4'] } };
    const my = readParts(
      d,
      u,
      null,
      { planned: true, lower, upper: { values: ['5'], key: ['9'] }, includeNulls: false },
      fresh,
    );
    expect(my[0].where).toEqual([
      'ROW(t."day", t."id") > ROW($1::date, $2::int)',
      'ROW(t."day", t."id") <= ROW($3::date, $4::int)',
    ]);
    // MySqlSource's { v: 2 } slices
    expect(
      readParts(d, u, null, { v: 2, part: 'main', after: ['1'], below: ['5'], pkLe: '7' }, fresh)[0].where,
    ).toHaveLength(4);
    const boundary = readParts(
      d,
      u,
      null,
      {
        v: 2,
        part: 'boundary',
        old: { from: ['1'], values: ['2'], seen: 'AA' },
        window: { from: ['5'], values: ['6'] },
        expect: 'BB',
      },
      fresh,
    );
    expect(boundary.map((x) => x.dedupe)).toEqual([
      { seen: 'AA', expect: null },
      { seen: '', expect: 'BB' },
    ]);
    expect(readParts(d, u, null, { v: 2, part: 'empty' }, fresh)).toEqual([]);
  });
});

describe('sliceQueries', () => {
  const u = unit([day]);
  const resume = { values: ['a'], from: ['a'], seen: 'AA' };

  it('one UNION ALL when the engine dedupes in SQL, with one parameter list', () => {
    const d = dialect('row', true);
    const p = new Params(d);
    const qs = sliceQueries(
      d,
      u,
      readParts(d, u, resume, undefined, () => p),
    );
    expect(qs).toHaveLength(1);
    expect(qs[0].text).toMatch(/^\(SELECT t."id", t."v" FROM "s"."t" t WHERE .*\) UNION ALL \(DEDUPE\("id","v"; fp/);
    expect(qs[0].values).toEqual(['a', 'a', 'a']);
    expect(qs[0].dedupe).toBeUndefined();
  });

  it('else one statement per region, the deduped ones with the fingerprint column last', () => {
    const d = dialect('expanded');
    const qs = sliceQueries(
      d,
      u,
      readParts(d, u, resume, undefined, () => new Params(d)),
    );
    expect(qs.map((q) => q.dedupe)).toEqual([undefined, { seen: 'AA', expect: null }]);
    expect(qs[1].text).toContain(`, fp(t."id", t."day", t."seq", t."v") AS "${FP}" FROM`);
    expect(qs.map((q) => q.values)).toEqual([['a'], ['a', 'a']]);
  });
});
