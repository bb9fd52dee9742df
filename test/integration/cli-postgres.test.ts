import { describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { runCli, workspace } from './cli-helpers.js';

const env = usePostgres('cli');

describe('nucleus-ingest with PostgreSQL (sink and KvStore)', { timeout: 300_000 }, () => {
  it('loads a unit into a PostgreSQL table with the checkpoint in kv_entries; a second run adds no row', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'pg.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 750, batchSize: 100 } } } }
sink:
  type: postgres
  id: warehouse
  config: { connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${env.schema} }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: postgres, connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${env.schema} }
units: [users]
policy: { sliceMaxRows: 200 }
`,
    );
    const opts = { env: { NUCLEUS_PG_URL: env.url } };
    const first = await runCli(['run', file], opts);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'ok',
      stats: { rowsImported: 750, slices: 4 },
    });
    const count = async () =>
      Number((await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".users`)).rows[0].n);
    expect(await count()).toBe(750);
    const ids = await env.query(
      `SELECT min(id)::int AS lo, max(id)::int AS hi, count(DISTINCT id)::int AS n FROM "${env.schema}".users`,
    );
    expect(ids.rows[0]).toEqual({ lo: 1, hi: 750, n: 750 });
    const kv = await env.query(
      `SELECT key, value, version FROM "${env.schema}".kv_entries WHERE key NOT LIKE '%::run' AND key NOT LIKE '%::run::%' AND key NOT LIKE '%::lease'`,
    );
    expect(kv.rows).toEqual([
      { key: 'ingest::sample::endpoint::crm::unit::users::sink::warehouse', value: { lastId: 750 }, version: '1' },
    ]);

    const second = await runCli(['run', file], opts);
    expect(second.code).toBe(0);
    expect(await count()).toBe(750);

    const status = await runCli(['status', file, 'users'], opts);
    expect(status.lines[0]).toMatchObject({
      checkpoint: { value: { lastId: 750 } },
      run: { value: { phase: 'committed' } },
    });
  });
});
