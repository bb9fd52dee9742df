/**
 * The schema-change matrix of issue 21, `replace` cells (the merge and append ones: schema-evolution-matrix.test.ts):
 * a MariaDB target (and a PostgreSQL one) across add, widen, drop, relax, narrow, rename, reorder, tighten, with every
 * codec (NDJSON, `ndjson.gz`, Arrow, the engine's pass-through), each run compared with the source as text both ways
 * (the target holds the last snapshot). A change the target cannot take in place (a type changed or narrowed, a
 * column dropped) rebuilds the table beside the target and swaps it in: PostgreSQL in the load's transaction, MariaDB
 * by one atomic RENAME after the load committed (its DDL commits implicitly), the ledger rows written after the swap.
 * A pass-through slice staged before a change still loads under replace.
 */

import { describe, expect, it } from 'vitest';
import { exportUnit, importUnit } from '../../src/index.js';
import { ALL, changeKinds, sorted, unitOf, useEngines } from './schema-evolution-matrix-kit.js';

const { postgres, mariadb } = useEngines('evmatrixr');

describe.each([postgres, mariadb])('schema-change matrix, replace: $name → $name', (engine) => {
  it.each(['ndjson', 'ndjson.gz', 'arrow', 'pass-through'] as const)(
    '%s staging: add, widen, drop, relax, narrow, rename, reorder equal the source as text',
    async (codec) => {
      const u = unitOf(engine, codec, 'replace', `r${codec.replace(/[^a-z]/g, '')}`);
      await changeKinds(engine, u);
      // both engines rebuild the table from the staged schema after a drop: the dropped columns are gone
      expect(Object.keys(await engine.columns(u.dst)).sort()).toEqual(['amount', 'id', 'name', 'qty', 'zone']);
    },
  );

  it('a type change under replace: the table is rebuilt with the new type and swapped in', async () => {
    const u = unitOf(engine, 'ndjson.gz', 'replace', 'rtype');
    await u.sql(`CREATE TABLE %t (${engine.ddl.create})`);
    await u.sql(
      `INSERT INTO %t (id, name, qty, amount, legacy) VALUES (1, 'a', 1, 1.50, 'l1'), (2, 'b', 2, 2.50, 'l2')`,
    );
    await u.run();
    await u.sql(engine.ddl.retype);
    await u.sql("UPDATE %t SET qty = 'many' WHERE id = 2");
    await u.sql("INSERT INTO %t (id, name, qty, amount, legacy) VALUES (3, 'c', '3', 3.00, 'l3')");
    const r = await u.run();
    expect(r.stats.rowsImported).toBe(3);
    expect((await engine.columns(u.dst)).qty!.type).toBe(
      engine.name === 'postgres' ? 'character varying(30)' : 'varchar(30)',
    );
  });

  it('a pass-through slice staged before a change still loads under replace; the next run evolves', async () => {
    const u = unitOf(engine, 'pass-through', 'replace', 'rres');
    await u.sql(`CREATE TABLE %t (${engine.ddl.create})`);
    await u.sql(
      `INSERT INTO %t (id, name, qty, amount, legacy) VALUES (1, 'a', 1, 1.50, 'l1'), (2, 'b', 2, 2.50, 'l2')`,
    );
    await u.run();
    await u.sql("UPDATE %t SET name = 'a1' WHERE id = 1");
    const { source, sink, ...rest } = u.base;
    await exportUnit({ ...rest, source });
    const staged = await engine.text(u.src, ALL, ['id', 'name', 'qty', 'amount', 'legacy']);
    // the source changes after the export: a column added, one dropped, a type widened
    await u.sql('ALTER TABLE %t ADD COLUMN region varchar(20)');
    await u.sql("UPDATE %t SET region = 'eu'");
    await u.sql('ALTER TABLE %t DROP COLUMN legacy');
    for (const s of engine.ddl.widen) await u.sql(s);
    const imported = await importUnit({ ...rest, sink });
    expect(imported.stats.rowsImported).toBe(2);
    expect(Object.keys(await engine.columns(u.dst))).not.toContain('region');
    expect(await u.target()).toEqual(sorted(staged));
    u.setHas(['id', 'name', 'qty', 'amount', 'region']);
    await u.run();
  });
});
