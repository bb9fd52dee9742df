/**
 * The MySQL sink's `replace` after a change the target cannot take in place (issue 21, ADR 0013's MySQL amendment),
 * against a real MariaDB: the new table is built beside the target, loaded and committed, swapped in by ONE atomic
 * `RENAME TABLE`, the old one dropped, and only then the ledger rows written. A "crash" is the sink's connection cut
 * at a chosen statement (the server rolls back its open transaction and frees its session lock, as when the process
 * dies): before the rename, after it, before the ledger's COMMIT. Every rerun of the same run converges — the target
 * holds the staged rows once, in the staged schema, the ledger one row per slice — and nothing is left beside it.
 */

import type mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import type { ImportRequest, Row, SchemaDiff } from '../../src/index.js';
import { MySqlSink } from '../../src/mysql/index.js';
import { rebuildLockName, rebuildTableName } from '../../src/mysql/swap.js';
import { testContext } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { stageInMemory } from '../helpers/staged.js';

const my = useMySql('myrebuild');

/** The staged schema: `qty` became text (it was INT), `legacy` was dropped. */
const SCHEMA = {
  fields: [
    { name: 'id', type: 'int64' as const, nullable: false },
    { name: 'name', type: 'string' as const, nullable: true },
    { name: 'qty', type: 'string' as const, nullable: true },
  ],
  primaryKey: ['id'],
};
const DIFF: SchemaDiff = {
  added: [],
  dropped: ['legacy'],
  widened: [],
  narrowed: [],
  typeChanged: [{ name: 'qty', kind: 'typeChanged', from: 'int64', to: 'string' }],
  nullabilityChanged: [],
  reordered: false,
};

const rowsOf = (n: number, tag: string): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: BigInt(i + 1), name: `${tag}${i + 1}`, qty: i % 5 ? `q${i}` : null }));

/** `rows` staged as `slices` slices of run `runId`; `req()` the replace request with the diff. */
async function stage(rows: Row[], runId: string, slices: number) {
  const ctx = testContext({ unitId: 'x.items', runId });
  const { session, desc } = await stageInMemory(ctx, rows, slices, SCHEMA);
  return {
    ctx,
    req: (): ImportRequest => ({
      unitId: 'x.items',
      reader: session.reader(),
      slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
      handles: [],
      schema: SCHEMA,
      schemaDiff: DIFF,
      disposition: 'replace',
    }),
  };
}

/** A target in the old shape (`qty` INT, `legacy` NOT NULL) holding `n` old rows. */
async function oldTarget(table: string, n = 5): Promise<void> {
  await my.query(
    `CREATE TABLE ${table} (id BIGINT PRIMARY KEY, name VARCHAR(20), qty INT, legacy VARCHAR(20) NOT NULL) ENGINE=InnoDB`,
  );
  await my.query(`INSERT INTO ${table} SELECT seq, CONCAT('old', seq), seq, 'l' FROM seq_1_to_${n}`);
}

/** The table as sorted text lines of its staged columns. */
async function text(table: string): Promise<string[]> {
  const rows = await my.query<any[]>(
    `SELECT CONCAT_WS('|', id, COALESCE(name, 'NULL'), COALESCE(CAST(qty AS CHAR), 'NULL')) AS t FROM ${table}`,
  );
  return rows.map((r) => String(r.t)).sort();
}
const expected = (rows: Row[]) => rows.map((r) => `${r.id}|${r.name ?? 'NULL'}|${r.qty ?? 'NULL'}`).sort();

async function columns(table: string): Promise<string[]> {
  const rows = await my.query<any[]>(
    'SELECT CONCAT(COLUMN_NAME, ' +
      "' ', COLUMN_TYPE) AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    [my.database, table],
  );
  return rows.map((r) => String(r.c));
}

/** Tables of the test database whose name starts with `_nucleus_new_` or `_nucleus_old_`. */
async function leftovers(): Promise<string[]> {
  const rows = await my.query<any[]>(
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND (TABLE_NAME LIKE '\\_nucleus\\_new\\_%' OR TABLE_NAME LIKE '\\_nucleus\\_old\\_%') ORDER BY 1",
    [my.database],
  );
  return rows.map((r) => String(r.t));
}

async function ledger(runId: string): Promise<string[]> {
  const rows = await my.query<any[]>(
    'SELECT slice, `rows` AS n FROM _nucleus_ingest_ledger WHERE run_id = ? ORDER BY slice',
    [runId],
  );
  return rows.map((r) => `${r.slice}:${r.n}`);
}

type CrashPoint = 'rename' | 'drop-old' | 'ledger-commit';

/**
 * A pool whose connections are cut (destroyed, the statement not sent) at `point`: the RENAME itself, the statement
 * after it (dropping the old table), or the COMMIT of the ledger rows after the rename.
 */
function crashingPool(pool: mysql.Pool, point: CrashPoint) {
  const proxies = new WeakMap<object, unknown>();
  let renamed = false;
  const crash = (c: any, cb: (err: unknown) => void) => {
    c.destroy();
    setImmediate(() => cb(Object.assign(new Error(`simulated crash at ${point}`), { fatal: true })));
  };
  const wrap = (c: any) => {
    if (!proxies.has(c)) {
      const query = (opts: any, cb: (...a: any[]) => void) => {
        const sql = String(typeof opts === 'string' ? opts : opts.sql).trim();
        const isRename = sql.startsWith('RENAME TABLE');
        if (isRename && point === 'rename') return crash(c, cb);
        if (renamed && point === 'drop-old' && sql.startsWith('DROP TABLE')) return crash(c, cb);
        if (renamed && point === 'ledger-commit' && sql === 'COMMIT') return crash(c, cb);
        return c.query(opts, (err: unknown, ...rest: unknown[]) => {
          if (!err && isRename) renamed = true;
          cb(err, ...rest);
        });
      };
      proxies.set(
        c,
        new Proxy(c, {
          get: (t, p) => (p === 'query' ? query : typeof t[p] === 'function' ? t[p].bind(t) : t[p]),
        }),
      );
    }
    return proxies.get(c);
  };
  return {
    getConnection: (cb: (err: unknown, c?: unknown) => void) =>
      pool.getConnection((err, c) => (err ? cb(err) : cb(null, wrap(c)))),
    end: (cb?: () => void) => pool.end(cb),
  };
}

describe('MySqlSink replace rebuilds the target after a change it cannot take in place', () => {
  it('swaps the rebuilt table in: staged columns and rows, the ledger after, nothing left beside it; a rerun skips', async () => {
    await oldTarget('items_ok');
    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'x.items': 'items_ok' } });
    const rows = rowsOf(300, 'n');
    const s = await stage(rows, 'run-ok', 3);
    const r = await sink.import(s.req(), s.ctx);
    expect(r).toMatchObject({ rowsImported: 300, provenance: { rebuilt: true, slicesCommitted: 3 } });
    expect(await columns('items_ok')).toEqual(['id bigint(20)', 'name longtext', 'qty longtext']);
    expect(await text('items_ok')).toEqual(expected(rows));
    expect(await ledger('run-ok')).toEqual(['0:100', '1:100', '2:100']);
    expect(await leftovers()).toEqual([]);
    // the same run again (a crash after the ledger commit, before the checkpoint): skipped, the table not rebuilt
    await my.query("UPDATE items_ok SET name = 'kept' WHERE id = 1");
    const again = await sink.import(s.req(), s.ctx);
    expect(again.provenance).toMatchObject({ rebuilt: false, slicesSkipped: 3, slicesCommitted: 0 });
    const [kept] = await my.query<any[]>('SELECT name FROM items_ok WHERE id = 1');
    expect(kept.name).toBe('kept');
    await sink.close();
  });

  it.each([
    ['rename', 'the old table stays, the loaded new one beside it'],
    ['drop-old', 'the new table is in place, the old one beside it'],
    ['ledger-commit', 'the new table is in place, no ledger row'],
  ] as const)('a crash at %s (%s): the rerun converges, no row lost or duplicated', async (point, _state) => {
    const table = `items_${point.replace('-', '_')}`;
    await oldTarget(table);
    const before = await text(table);
    const rows = rowsOf(1200, 'c');
    const s = await stage(rows, `run-${point}`, 4);
    const crashing = new MySqlSink({ pool: crashingPool(my.newPool(), point), tables: { 'x.items': table } });
    const err = await crashing.import(s.req(), s.ctx).catch((e) => e);
    expect(err.code).toBe('sink_failed');
    expect(err.message).toContain(`simulated crash at ${point}`);
    // the ledger never says done while the target is the old table
    expect(await ledger(`run-${point}`)).toEqual([]);
    const fresh = rebuildTableName(table, 'new');
    const old = rebuildTableName(table, 'old');
    if (point === 'rename') {
      expect(await text(table)).toEqual(before);
      expect(await columns(table)).toContain('legacy varchar(20)');
      expect(await leftovers()).toEqual([fresh]);
      expect(await text(fresh)).toEqual(expected(rows)); // loaded and committed: the rerun must drop it, not add to it
    } else {
      expect(await text(table)).toEqual(expected(rows));
      expect(await leftovers()).toEqual(point === 'drop-old' ? [old] : []);
    }

    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'x.items': table } });
    const r = await sink.import(s.req(), s.ctx);
    expect(r).toMatchObject({ rowsImported: 1200, provenance: { rebuilt: true, slicesCommitted: 4 } });
    expect(await text(table)).toEqual(expected(rows));
    const [{ n, d }] = await my.query<any[]>(
      `SELECT CAST(COUNT(*) AS SIGNED) AS n, CAST(COUNT(DISTINCT id) AS SIGNED) AS d FROM ${table}`,
    );
    expect([Number(n), Number(d)]).toEqual([1200, 1200]);
    expect(await columns(table)).toEqual(['id bigint(20)', 'name longtext', 'qty longtext']);
    expect(await ledger(`run-${point}`)).toEqual(['0:300', '1:300', '2:300', '3:300']);
    expect(await leftovers()).toEqual([]);
    await sink.close();
  });

  it('a new table left by an earlier crash, of another shape and with rows, is dropped and rebuilt', async () => {
    await oldTarget('items_stale');
    const fresh = rebuildTableName('items_stale', 'new');
    await my.query(`CREATE TABLE \`${fresh}\` (id BIGINT PRIMARY KEY, junk TEXT) ENGINE=InnoDB`);
    await my.query(`INSERT INTO \`${fresh}\` VALUES (1, 'stale'), (999, 'stale')`);
    await my.query(`CREATE TABLE \`${rebuildTableName('items_stale', 'old')}\` (x INT) ENGINE=InnoDB`);
    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'x.items': 'items_stale' } });
    const rows = rowsOf(50, 's');
    const s = await stage(rows, 'run-stale', 2);
    await sink.import(s.req(), s.ctx);
    expect(await text('items_stale')).toEqual(expected(rows));
    expect(await leftovers()).toEqual([]);
    await sink.close();
  });

  it('two importers of one run at once: one rebuilds, the other waits for its lock and skips', async () => {
    await oldTarget('items_twice');
    const rows = rowsOf(2000, 't');
    const a = await stage(rows, 'run-twice', 4);
    const b = await stage(rows, 'run-twice', 4);
    const sinks = [0, 1].map(() => new MySqlSink({ pool: my.newPool(), tables: { 'x.items': 'items_twice' } }));
    const results = await Promise.all([sinks[0]!.import(a.req(), a.ctx), sinks[1]!.import(b.req(), b.ctx)]);
    expect(results.map((r) => (r.provenance as { rebuilt: boolean }).rebuilt).sort()).toEqual([false, true]);
    expect(await text('items_twice')).toEqual(expected(rows));
    expect(await ledger('run-twice')).toEqual(['0:500', '1:500', '2:500', '3:500']);
    for (const s of sinks) await s.close();
  });

  it('a stale holder of an earlier run, back after a later run replaced the target, changes nothing', async () => {
    await oldTarget('items_stale_run');
    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'x.items': 'items_stale_run' } });
    const first = await stage(rowsOf(40, 'r1-'), 'run-r1', 2);
    await sink.import(first.req(), first.ctx);
    const later = rowsOf(30, 'r2-');
    const second = await stage(later, 'run-r2', 2);
    await sink.import(second.req(), second.ctx);
    const stale = await sink.import(first.req(), first.ctx);
    expect(stale.provenance).toMatchObject({ rebuilt: false, slicesSkipped: 2 });
    expect(await text('items_stale_run')).toEqual(expected(later));
    await sink.close();
  });

  it('another session holding the rebuild lock past innodb_lock_wait_timeout: sink_busy (retryable), the target untouched', async () => {
    await oldTarget('items_busy');
    const before = await text('items_busy');
    const holder = await my.pool.getConnection();
    try {
      const key = rebuildLockName({ schema: my.database, name: 'items_busy' });
      await holder.query('SELECT GET_LOCK(?, 0)', [key]);
      const pool = my.newPool({ connectionLimit: 2 });
      pool.on('connection', (c) => c.query('SET SESSION innodb_lock_wait_timeout = 1'));
      const sink = new MySqlSink({ pool, tables: { 'x.items': 'items_busy' } });
      const s = await stage(rowsOf(10, 'b'), 'run-busy', 1);
      const err = await sink.import(s.req(), s.ctx).catch((e) => e);
      expect(err.code).toBe('sink_busy');
      expect(err.retryable).toBe(true);
      expect(await text('items_busy')).toEqual(before);
      expect(await leftovers()).toEqual([]);
      await holder.query('SELECT RELEASE_LOCK(?)', [key]);
      await sink.import(s.req(), s.ctx);
      expect(await text('items_busy')).toEqual(expected(rowsOf(10, 'b')));
      await sink.close();
    } finally {
      holder.release();
    }
  });

  it('readers never see an empty or half-loaded table while the rebuild loads and swaps', async () => {
    await oldTarget('items_read', 300);
    const sink = new MySqlSink({ pool: my.newPool(), tables: { 'x.items': 'items_read' } });
    const s = await stage(rowsOf(20_000, 'r'), 'run-read', 4);
    const seen = new Set<number>();
    let done = false;
    const reader = (async () => {
      while (!done) {
        const [{ n }] = await my.query<any[]>('SELECT CAST(COUNT(*) AS SIGNED) AS n FROM items_read');
        seen.add(Number(n));
      }
    })();
    await sink.import(s.req(), s.ctx);
    done = true;
    await reader;
    expect(seen.size).toBeGreaterThan(0);
    expect([...seen].every((n) => n === 300 || n === 20_000)).toBe(true);
    await sink.close();
  });

  it('rebuild table names stay within 64 characters and differ for targets sharing a long prefix', () => {
    const long = 'a'.repeat(64);
    const other = `${'a'.repeat(63)}b`;
    for (const role of ['new', 'old'] as const) {
      expect([...rebuildTableName(long, role)].length).toBeLessThanOrEqual(64);
      expect(rebuildTableName(long, role)).not.toBe(rebuildTableName(other, role));
    }
    expect(rebuildTableName('orders', 'new')).toMatch(/^_nucleus_new_orders_[0-9a-f]{12}$/);
  });
});
