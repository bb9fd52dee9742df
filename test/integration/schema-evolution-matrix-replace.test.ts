/**
 * The schema-change matrix of issue 21, `replace` cells (the merge and append ones: schema-evolution-matrix.test.ts):
 * a MariaDB target (and a PostgreSQL one) across add, widen, drop, relax, narrow, rename, reorder, tighten, with every
 * codec (NDJSON, `ndjson.gz`, Arrow, the engine's pass-through), each run compared with the source as text both ways
 * (the target holds the last snapshot). A type change under replace on MariaDB is refused by the sink
 * (schema_conflict, the run stays pending, the target untouched: MySQL's DDL commits implicitly, so it cannot rebuild
 * and swap with its ledger); the user's own `ALTER` then lets the pending run load. A pass-through slice staged before
 * a change still loads under replace.
 */

import { describe, expect, it } from 'vitest';
import { exportUnit, importUnit, runUnit } from '../../src/index.js';
import { ALL, changeKinds, sorted, unitOf, useEngines } from './schema-evolution-matrix-kit.js';

const { my, postgres, mariadb } = useEngines('evmatrixr');

describe.each([postgres, mariadb])('schema-change matrix, replace: $name → $name', (engine) => {
  it.each(['ndjson', 'ndjson.gz', 'arrow', 'pass-through'] as const)(
    '%s staging: add, widen, drop, relax, narrow, rename, reorder equal the source as text',
    async (codec) => {
      const u = unitOf(engine, codec, 'replace', `r${codec.replace(/[^a-z]/g, '')}`);
      await changeKinds(engine, u);
      const cols = Object.keys(await engine.columns(u.dst)).sort();
      // PostgreSQL rebuilds the table from the staged schema after a drop; MariaDB evolves in place and keeps the
      // dropped columns (NULL everywhere after the reload)
      expect(cols).toEqual(
        engine.name === 'postgres'
          ? ['amount', 'id', 'name', 'qty', 'zone']
          : ['amount', 'id', 'legacy', 'name', 'qty', 'region', 'zone'],
      );
    },
  );

  it('a type change under replace: MariaDB refuses it (the run stays pending), the ALTER unblocks it; PostgreSQL swaps', async () => {
    const u = unitOf(engine, 'ndjson.gz', 'replace', 'rtype');
    await u.sql(`CREATE TABLE %t (${engine.ddl.create})`);
    await u.sql(
      `INSERT INTO %t (id, name, qty, amount, legacy) VALUES (1, 'a', 1, 1.50, 'l1'), (2, 'b', 2, 2.50, 'l2')`,
    );
    await u.run();
    const before = await u.target();
    await u.sql(engine.ddl.retype);
    await u.sql("UPDATE %t SET qty = 'many' WHERE id = 2");
    await u.sql("INSERT INTO %t (id, name, qty, amount, legacy) VALUES (3, 'c', '3', 3.00, 'l3')");
    if (engine.name === 'postgres') {
      await u.run();
      expect((await engine.columns(u.dst)).qty!.type).toBe('character varying(30)');
      return;
    }
    const err = await runUnit(u.base).catch((e) => e);
    expect(err.code).toBe('schema_conflict');
    expect(err.message).toContain('qty');
    expect(err.message).toContain('cannot rebuild');
    // nothing of the refused run reached the target: same type, same rows
    expect((await engine.columns(u.dst)).qty!.type).toMatch(/^int/);
    expect(await u.target()).toEqual(before);
    // a second attempt without the ALTER is refused again, the target still untouched
    expect((await runUnit(u.base).catch((e) => e)).code).toBe('schema_conflict');
    expect(await u.target()).toEqual(before);
    // the user's own ALTER: the pending run (staged before) loads
    await my.query(`ALTER TABLE ${u.dst} MODIFY qty VARCHAR(30)`);
    const r = await runUnit(u.base);
    expect(r.resumed).toBe(true);
    await u.landed();
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
