/**
 * The cross-engine cells of issue 21's schema-change matrix that schema-evolution-matrix-cross.test.ts leaves out:
 * `ndjson.gz` staging with append and replace, and Arrow staging with merge, PostgreSQL → MariaDB and MariaDB →
 * PostgreSQL, each through add, widen, drop, relax, narrow, rename, reorder and tighten (changeKinds), every run
 * compared with the source as text both ways. The replace cells rebuild the target on a drop or narrowing (the MySQL
 * sink by one atomic RENAME, ADR 0013's amendment), so the dropped columns are gone from it afterwards.
 */

import { describe, expect, it } from 'vitest';
import { changeKinds, unitOf, useEngines } from './schema-evolution-matrix-kit.js';

const { postgres, mariadb } = useEngines('evcross');

describe.each([
  { from: postgres, to: mariadb },
  { from: mariadb, to: postgres },
])('schema-change matrix across engines: $from.name → $to.name', ({ from, to }) => {
  it.each([
    ['ndjson.gz', 'append'],
    ['ndjson.gz', 'replace'],
    ['arrow', 'merge'],
  ] as const)(
    '%s staging, %s: add, widen, drop, relax, narrow, rename, reorder, tighten equal the source as text',
    async (codec, disposition) => {
      const u = unitOf(from, codec, disposition, `c${codec.replace(/[^a-z]/g, '')}${disposition[0]}`, to);
      await changeKinds(from, u);
      expect(u.staged().every((p) => p.endsWith(codec === 'arrow' ? '.arrows' : '.ndjson.gz'))).toBe(true);
      expect(u.staged().length).toBeGreaterThan(0);
      const cols = Object.keys(await to.columns(u.dst)).sort();
      // merge and append keep a dropped column (NULL from the drop on); replace rebuilds the table without it
      expect(cols).toEqual(
        disposition === 'replace'
          ? ['amount', 'id', 'name', 'qty', 'zone']
          : ['amount', 'id', 'legacy', 'name', 'qty', 'region', 'zone'],
      );
      // the add step (a column only) evolves the target in place, with ADD COLUMN, in every cell
      const evolved = u.events.filter((e) => e.type === 'schema.evolved');
      expect(evolved.some((e) => (e as any).added.includes('region'))).toBe(true);
    },
  );
});
