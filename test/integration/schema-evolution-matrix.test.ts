/**
 * The schema-change matrix of issue 21, merge and append cells that schema-evolution.test.ts leaves open
 * (docs/schema-evolution.md): the `ndjson.gz` staging codec (merge and append) and `arrow` with append, PostgreSQL and
 * MariaDB targets, across add, widen, drop, relax, narrow, rename, reorder, tighten (NOT NULL added). The replace cells
 * are in schema-evolution-matrix-replace.test.ts, the Parquet ones in schema-evolution-parquet-matrix.test.ts.
 *
 * PostgreSQL cannot move a column, so its reorder rebuilds the source table with the columns in another order.
 *
 * "As text, both ways": the target's rows (every column of ALL, NULL where the target lacks it) equal, as a multiset,
 * the source's rows (NULL where the source lacks the column) — merge the last snapshot, append every snapshot (a
 * dropped column keeps its old values in rows written before the drop, NULL after).
 */

import { describe, expect, it } from 'vitest';
import { changeKinds, unitOf, useEngines } from './schema-evolution-matrix-kit.js';

const { postgres, mariadb } = useEngines('evmatrix');

describe.each([postgres, mariadb])('schema-change matrix, merge and append: $name → $name', (engine) => {
  it.each([
    ['ndjson.gz', 'merge', '.ndjson.gz'],
    ['ndjson.gz', 'append', '.ndjson.gz'],
    ['arrow', 'append', '.arrows'],
  ] as const)(
    '%s staging, %s: add, widen, drop, relax, narrow, rename, reorder equal the source as text',
    async (codec, disposition, ext) => {
      const u = unitOf(engine, codec, disposition, `${codec[0]}${codec.length}${disposition[0]}`);
      await changeKinds(engine, u);
      expect(u.staged().length).toBeGreaterThan(0);
      expect(u.staged().every((p) => p.endsWith(ext))).toBe(true);
      const evolved = u.events.filter((e) => e.type === 'schema.evolved');
      expect(evolved.some((e) => (e as any).added.includes('region'))).toBe(true);
      expect(evolved.some((e) => (e as any).added.includes('zone'))).toBe(true);
    },
  );
});
