/**
 * The MySQL variant of the crash suite: PostgreSQL source table `src` (the shared harness), filesystem staging,
 * MySqlSink into `dst` of a random MariaDB database, MySqlKvStore checkpoints there too. The invariants are the
 * PostgreSQL ones, checked across both servers.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { useMySql } from '../helpers/mysql.js';
import type { PgTestEnv } from '../helpers/pg.js';
import { type CrashSetup, useCrashSetup } from './crash-suite.js';
import { ROOT } from './harness.js';

export const MYSQL_CRASH_WORKER = join(ROOT, 'test/reliability/workers/crash-worker-mysql.ts');

export function useMySqlCrashSetup(
  suite: string,
  pg: PgTestEnv,
  disposition: 'append' | 'merge',
  extraEnv: Record<string, string> = {},
): CrashSetup {
  const my = useMySql(`rel_${disposition}`);
  let setup: CrashSetup;
  // Every MariaDB read in one snapshot: the server finishes a statement a SIGKILLed worker had already sent (a
  // slice's COMMIT lands after the kill), so reads taken one by one could see a ledger row and not its rows.
  const check = async (label: string, complete: boolean) => {
    const conn = await my.pool.getConnection();
    try {
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const q = async <R = any>(text: string, values?: unknown[]): Promise<R> =>
        (await conn.query(text, values))[0] as R;
      return await checkInSnapshot(q, label, complete);
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
      conn.release();
    }
  };
  const checkInSnapshot = async (
    q: <R = any>(text: string, values?: unknown[]) => Promise<R>,
    label: string,
    complete: boolean,
  ) => {
    const [t] = await q<any[]>(
      'SELECT CAST(COUNT(*) AS SIGNED) AS n, CAST(COUNT(DISTINCT seq) AS SIGNED) AS d FROM dst',
    );
    const n = Number(t.n);
    const d = Number(t.d);
    expect(n, `${label}: duplicate sequence numbers in the MariaDB target`).toBe(d);
    const src = new Set(
      (await pg.query(`SELECT seq::text AS s FROM "${pg.schema}".src`)).rows.map((r) => r.s as string),
    );
    const dst = new Set((await q<any[]>('SELECT CAST(seq AS CHAR) AS s FROM dst')).map((r) => String(r.s)));
    expect(
      [...dst].filter((x) => !src.has(x)),
      `${label}: target rows that are not in the source`,
    ).toEqual([]);
    const hasKv = (
      await q<any[]>(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kv_entries'",
      )
    ).length;
    const key = `ingest::postgres::endpoint::crash-src::unit::${pg.schema}.src::sink::crash-dst`;
    const cpRow = hasKv
      ? (
          await q<any[]>(
            "SELECT value FROM kv_entries WHERE namespace = 'ingestion' AND scope_id = 'default' AND `key` = ? AND (expires_at IS NULL OR expires_at > UTC_TIMESTAMP(3))",
            [key],
          )
        )[0]
      : undefined;
    const cp = cpRow ? JSON.parse(String(cpRow.value))?.values?.[0] : undefined;
    if (cp !== undefined && cp !== null) {
      const missing = [...src].filter((x) => BigInt(x) <= BigInt(cp) && !dst.has(x));
      expect(missing.length, `${label}: checkpoint ${cp} is past rows that are not in the target`).toBe(0);
    }
    const hasLedger = (
      await q<any[]>(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_nucleus_ingest_ledger'",
      )
    ).length;
    const ledger: Array<{ run: string; slice: number; rows: number }> = hasLedger
      ? (
          await q<any[]>(
            'SELECT CAST(run_id AS CHAR) AS run, slice, CAST(`rows` AS SIGNED) AS n FROM _nucleus_ingest_ledger',
          )
        ).map((r) => ({ run: String(r.run), slice: Number(r.slice), rows: Number(r.n) }))
      : [];
    const ledgerRows = ledger.reduce((a, r) => a + r.rows, 0);
    if (disposition === 'append')
      expect(ledgerRows, `${label}: the ledger accounts for ${ledgerRows} rows but the target holds ${n}`).toBe(n);
    else
      expect(ledgerRows, `${label}: merge: the ledger accounts for at least the target's rows`).toBeGreaterThanOrEqual(
        n,
      );
    const store = setup.store();
    for (const run of new Set(ledger.map((l) => l.run))) {
      const dir = `${setup.prefix}/default/crash-src/${run}`;
      expect(
        await store.head(`${dir}/_SUCCESS`),
        `${label}: run ${run} was imported but has no _SUCCESS`,
      ).toBeDefined();
      const chunks: Uint8Array[] = [];
      for await (const c of await store.get(`${dir}/manifest.json`)) chunks.push(c);
      const manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        slices: Array<{ index: number; rows: number }>;
      };
      for (const l of ledger.filter((x) => x.run === run)) {
        const m = manifest.slices.find((x) => x.index === l.slice);
        expect(m, `${label}: ledger slice ${l.slice} of run ${run} is not in its manifest`).toBeDefined();
        expect(l.rows, `${label}: ledger slice ${l.slice} of run ${run} rows vs manifest`).toBe(m!.rows);
      }
    }
    if (complete) expect(n, `${label}: after a committed run the target must hold every source row`).toBe(src.size);
    return { targetRows: n, distinct: d };
  };
  setup = useCrashSetup(suite, pg, disposition, 'fs', {
    script: MYSQL_CRASH_WORKER,
    env: () => ({ MYSQL_URL: my.url, ...extraEnv }),
    check,
    before: async () => {
      await my.query(
        `CREATE TABLE dst (seq BIGINT NOT NULL${disposition === 'merge' ? ' PRIMARY KEY' : ''}, payload TEXT) ENGINE=InnoDB`,
      );
    },
  });
  return setup;
}
