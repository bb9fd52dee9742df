/**
 * Change-data-capture test kit: the source table (TOASTed values, JSON, arrays, numerics), a seeded writer that
 * inserts, updates (TOASTed columns left unchanged, keys moved in place) and deletes, and the text comparison of source
 * and target both ways.
 */
import type pg from 'pg';

export const TABLE_DDL = (t: string) => `CREATE TABLE ${t} (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  qty integer,
  price numeric(12,3),
  doc jsonb,
  big text,
  ts timestamptz,
  tags text[]
)`;

/** SQL for a random incompressible-enough value of about `kb` KiB (stored out of line: STORAGE EXTERNAL). */
export const bigValue = (kb: number) =>
  `(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, ${Math.max(1, Math.round((kb * 1024) / 32))}))`;

/** Create the table (TOAST out of line), add it to the publication, and insert `rows` rows. */
export async function createSourceTable(db: pg.Pool | pg.Client, table: string, publication: string, rows: number) {
  await db.query(TABLE_DDL(table));
  await db.query(`ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL`);
  await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
  if (rows > 0) await insertRows(db, table, 1, rows);
}

export async function insertRows(db: pg.Pool | pg.Client, table: string, from: number, n: number) {
  await db.query(
    `INSERT INTO ${table} SELECT g, 'n' || g, g % 97, (g * 1.125)::numeric(12,3), jsonb_build_object('g', g, 'x', 1.50),
       CASE WHEN g % 10 = 0 THEN ${bigValue(4)} ELSE NULL END, '2024-01-01 00:00:00.123456+00'::timestamptz + g * interval '1 second',
       ARRAY['a' || g, 'b'] FROM generate_series(${from}, ${from + n - 1}) g`,
  );
}

/** A small deterministic PRNG. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One writer transaction of 1–4 random changes: insert, update of small columns (a TOASTed `big` stays unchanged),
 * update of `big`, key moved in place, delete. Returns the number of statements run.
 */
export async function writeOnce(c: pg.PoolClient | pg.Client, table: string, rnd: () => number, next: { id: number }) {
  const n = 1 + Math.floor(rnd() * 4);
  await c.query('BEGIN');
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const pick = `(SELECT id FROM ${table} ORDER BY id OFFSET floor(random() * greatest((SELECT count(*) FROM ${table}) - 1, 0)) LIMIT 1)`;
    if (r < 0.3) {
      const id = next.id++;
      await c.query(
        `INSERT INTO ${table} VALUES ($1::bigint, 'w' || $1::bigint, $1::bigint % 13, 2.5, '{"w": 1}', CASE WHEN $1::bigint % 3 = 0 THEN ${bigValue(3)} END, now(), ARRAY['w'])`,
        [id],
      );
    } else if (r < 0.6) {
      await c.query(`UPDATE ${table} SET qty = coalesce(qty, 0) + 1, name = name || '+' WHERE id = ${pick}`);
    } else if (r < 0.7) {
      await c.query(`UPDATE ${table} SET big = ${bigValue(3)} WHERE id = ${pick}`);
    } else if (r < 0.8) {
      const id = next.id++;
      await c.query(`UPDATE ${table} SET id = $1, qty = -1 WHERE id = ${pick}`, [id]);
    } else {
      await c.query(`DELETE FROM ${table} WHERE id = ${pick}`);
    }
  }
  await c.query('COMMIT');
  return n;
}

/** Rows of `a` not in `b` and of `b` not in `a`, compared as text (each row's full text, multiset). */
export async function diffAsText(
  db: pg.Pool | pg.Client,
  a: string,
  b: string,
): Promise<{ missing: number; extra: number }> {
  const q = async (x: string, y: string) =>
    Number(
      (
        await db.query(
          `SELECT count(*)::int AS n FROM (SELECT (t.*)::text FROM ${x} t EXCEPT ALL SELECT (t.*)::text FROM ${y} t) d`,
        )
      ).rows[0].n,
    );
  return { missing: await q(a, b), extra: await q(b, a) };
}
