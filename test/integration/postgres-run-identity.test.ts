/**
 * Run identity against the real PostgreSQL sink ledger (issue 10 item 4): runs A, B, then A again. Before the fix
 * the ledger skipped every slice of the second "A" (already recorded) while its checkpoint was committed, and the
 * rows inserted after B were never loaded. Compared as text in SQL, both ways (EXCEPT ALL).
 */

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { checkpointKey, MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('runid');

describe('PostgresSource → staging → PostgresSink: a reused run id', () => {
  for (const disposition of ['append', 'merge'] as const) {
    it(`A, B, A (${disposition}): the second A returns A's result, the checkpoint does not move, no row is lost`, async () => {
      const s = `"${env.schema}"`;
      const src = `src_${disposition}`;
      const dst = `dst_${disposition}`;
      await env.query(`CREATE TABLE ${s}.${src} (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL)`);
      await env.query(
        `CREATE TABLE ${s}.${dst} (id bigint ${disposition === 'merge' ? 'PRIMARY KEY' : ''}, v text, updated_at timestamptz NOT NULL)`,
      );
      const insert = (from: number, to: number) =>
        env.query(
          `INSERT INTO ${s}.${src} SELECT g, 'v' || g, '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(${from}, ${to}) g`,
        );
      await insert(1, 1000);
      const unitId = `${env.schema}.${src}`;
      const pool = env.newPool();
      const kv = new MemoryKvStore();
      const opts = {
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['updated_at'] } } }),
        sink: new PostgresSink({ pool, tables: { [unitId]: `${env.schema}.${dst}` } }),
        staging: new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: await mkdtemp(join(tmpdir(), 'runid-')) }),
        }),
        kv,
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental' as const,
        disposition,
        ...(disposition === 'merge' ? { primaryKey: ['id'] } : {}),
        policy: { sliceMaxRows: 300, retry: { maxAttempts: 1 } },
      };
      const key = checkpointKey({ vendor: 'postgres', endpointId: 'pg', unitId });
      try {
        const a = await runUnit({ ...opts, runId: 'run-A' });
        await insert(1001, 1500);
        await runUnit({ ...opts, runId: 'run-B' });
        const afterB = await kv.get(key);
        await insert(1501, 2000);
        const again = await runUnit({ ...opts, runId: 'run-A' });
        expect(again.repeated).toBe(true);
        expect(again.newCheckpoint).toEqual(a.newCheckpoint);
        expect(await kv.get(key)).toEqual(afterB);
        // B repeated: its recorded result too.
        await expect(runUnit({ ...opts, runId: 'run-B' })).resolves.toMatchObject({ repeated: true });
        const c = await runUnit({ ...opts, runId: 'run-C' });
        expect(c.stats.rowsImported).toBe(500);
        const diff = await env.query(
          `SELECT count(*)::int AS n FROM ((SELECT id::text, v, updated_at::text FROM ${s}.${src} EXCEPT ALL SELECT id::text, v, updated_at::text FROM ${s}.${dst})
             UNION ALL (SELECT id::text, v, updated_at::text FROM ${s}.${dst} EXCEPT ALL SELECT id::text, v, updated_at::text FROM ${s}.${src})) d`,
        );
        expect(diff.rows[0].n).toBe(0);
        // A finished run's result does not depend on the options of the repeat.
        const other = disposition === 'merge' ? 'append' : 'merge';
        await expect(
          runUnit({ ...opts, runId: 'run-A', disposition: other, primaryKey: ['id'] }),
        ).resolves.toMatchObject({
          repeated: true,
        });
      } finally {
        await pool.end();
      }
    });
  }
});
