/**
 * A committed incremental run loads every row that existed when it started — with numeric cursors whose text
 * order differs from their numeric order (1 … 5000: '999' > '5000' as text). The crash suites use sequence
 * numbers of equal width (from 1 000 001), so this file is where that property is proved on its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { checkpointKey, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('rel_incr');
const root = mkdtempSync(join(tmpdir(), 'nucleus-incr-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('incremental completeness', () => {
  for (const type of ['bigint', 'integer', 'numeric'] as const) {
    it(`one committed run loads all 5000 rows of a ${type} cursor 1…5000, and the checkpoint is 5000`, async () => {
      const s = env.schema;
      await env.query(`CREATE TABLE "${s}"."src_${type}" (seq ${type} PRIMARY KEY, payload text)`);
      await env.query(`CREATE TABLE "${s}"."dst_${type}" (seq ${type} NOT NULL, payload text)`);
      await env.query(`INSERT INTO "${s}"."src_${type}" SELECT g, 'p' || g FROM generate_series(1, 5000) g`);
      const unitId = `${s}.src_${type}`;
      const kv = new PostgresKvStore({ db: env.newKysely(), schema: s });
      await kv.migrate();
      const unit = { vendor: 'postgres', endpointId: 'incr', unitId, sinkId: type };
      const result = await runUnit({
        source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['seq'] } } }),
        sink: new PostgresSink({ pool: env.newPool({ max: 2 }), schema: s, tables: { [unitId]: `${s}.dst_${type}` } }),
        staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
        kv,
        unit,
        mode: 'incremental',
        policy: { sliceMaxRows: 2000 },
      });
      const loaded = (await env.query(`SELECT count(*)::int AS n FROM "${s}"."dst_${type}"`)).rows[0].n;
      const cp = (await kv.get(checkpointKey(unit)))?.value as { values?: string[] } | undefined;
      expect({ rowsImported: result.stats.rowsImported, loaded, checkpoint: cp?.values?.[0] }).toEqual({
        rowsImported: 5000,
        loaded: 5000,
        checkpoint: '5000',
      });
    }, 60_000);
  }
});
