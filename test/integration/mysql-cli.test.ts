import { describe, expect, it } from 'vitest';
import { useMySql } from '../helpers/mysql.js';
import { runCli, workspace } from './cli-helpers.js';

const env = useMySql('cli');

describe('nucleus-ingest with MySQL (registered source and sink)', { timeout: 300_000 }, () => {
  it('loads a unit into MariaDB, then copies that table MariaDB → MariaDB through the mysql source; templates list both', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'my.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 450, batchSize: 100 } } } }
sink:
  type: mysql
  id: warehouse
  config: { connectionString: "\${env:NUCLEUS_MYSQL_URL}" }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: file, path: "${ws.dir}/kv.json" }
units: [users]
policy: { sliceMaxRows: 200 }
`,
    );
    const opts = { env: { NUCLEUS_MYSQL_URL: env.url } };
    const first = await runCli(['--json', 'run', file], opts);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'ok',
      stats: { rowsImported: 450 },
    });
    const [c] = await env.query<any[]>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM users');
    expect([Number(c.n), Number(c.d)]).toEqual([450, 450]);
    expect((await runCli(['--json', 'run', file], opts)).code).toBe(0);
    expect(Number((await env.query<any[]>('SELECT COUNT(*) AS n FROM users'))[0].n)).toBe(450);

    const copy = await ws.write(
      'copy.yaml',
      `source:
  type: mysql
  id: shop
  config: { connectionString: "\${env:NUCLEUS_MYSQL_URL}", units: { "${env.database}.users": { cursorColumns: [id] } } }
sink:
  type: mysql
  id: mirror
  config: { connectionString: "\${env:NUCLEUS_MYSQL_URL}", tables: { "${env.database}.users": users_copy } }
staging: { type: filesystem, root: "${ws.dir}/staging2" }
kv: { type: file, path: "${ws.dir}/kv2.json" }
units: ["${env.database}.users"]
`,
    );
    const r = await runCli(['--json', 'run', copy], opts);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const diff = await env.query<any[]>(
      'SELECT COUNT(*) AS n FROM (SELECT * FROM users EXCEPT ALL SELECT * FROM users_copy) a UNION ALL SELECT COUNT(*) FROM (SELECT * FROM users_copy EXCEPT ALL SELECT * FROM users) b',
    );
    expect(diff.map((x) => Number(x.n))).toEqual([0, 0]);

    const templates = await runCli(['--json', 'templates'], opts);
    const ids = JSON.stringify(templates.lines);
    expect(ids).toContain('"mysql"');
  });
});
