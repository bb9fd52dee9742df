/**
 * The schema-change matrix of issue 21, merge and append cells that schema-evolution.test.ts leaves open
 * (docs/schema-evolution.md): the `ndjson.gz` staging codec (merge and append) and `arrow` with append, PostgreSQL and
 * MariaDB targets, across add, widen, drop, relax, narrow, rename, reorder, tighten (NOT NULL added). The replace cells
 * are in schema-evolution-matrix-replace.test.ts, the Parquet ones in schema-evolution-parquet-matrix.test.ts.
 *
 * Also a target left half-altered (the column added, the widening not yet — what a run killed between its DDL
 * statements leaves on MySQL, where each commits on its own): the next run finishes the evolution and loads.
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

describe.each([postgres, mariadb])('a target left half-altered: $name → $name', (engine) => {
  it.each(['merge', 'append'] as const)(
    '%s: a run that died between its DDL statements (column added, widening not yet) is finished by the next run',
    async (disposition) => {
      const u = unitOf(engine, 'ndjson.gz', disposition, `half${disposition[0]}`);
      await u.sql(`CREATE TABLE %t (${engine.ddl.create})`);
      await u.sql(
        `INSERT INTO %t (id, name, qty, amount, legacy) VALUES (1, 'a', 1, 1.50, 'l1'), (2, 'b', 2, 2.50, 'l2')`,
      );
      await u.run();
      await u.sql('ALTER TABLE %t ADD COLUMN region varchar(20)');
      for (const s of engine.ddl.widen) await u.sql(s);
      await u.sql(
        "UPDATE %t SET region = 'eu', qty = 9007199254740993, name = 'a much longer name than ten' WHERE id = 1",
      );
      // what a killed evolve leaves behind: its first DDL statement done (MySQL commits each on its own), the rest not
      await engine.exec(`ALTER TABLE ${engine.q(u.dst)} ADD COLUMN region varchar(20)`);
      u.setHas(['id', 'name', 'qty', 'amount', 'legacy', 'region']);
      await u.run();
      const cols = await engine.columns(u.dst);
      expect(cols.qty!.type).toMatch(/^bigint/);
      expect(cols.region!.nullable).toBe(true);
      const evolved = u.events.filter((e) => e.type === 'schema.evolved') as any[];
      expect(evolved.flatMap((e) => e.added)).not.toContain('region');
    },
  );
});
