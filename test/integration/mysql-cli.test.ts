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

  it('kv: { type: mysql } keeps the checkpoint in MariaDB: a second incremental run reads only the new rows; a bad URL is config_invalid', async () => {
    const ws = await workspace();
    await env.query('CREATE TABLE kv_src (id BIGINT PRIMARY KEY, v VARCHAR(20))');
    await env.query("INSERT INTO kv_src SELECT seq, CONCAT('v', seq) FROM seq_1_to_120");
    const pipeline = (kv: string) => `source:
  type: mysql
  id: shop
  config: { connectionString: "\${env:NUCLEUS_MYSQL_URL}", units: { "${env.database}.kv_src": { cursorColumns: [id] } } }
sink:
  type: mysql
  id: mirror
  config: { connectionString: "\${env:NUCLEUS_MYSQL_URL}", tables: { "${env.database}.kv_src": kv_dst } }
staging: { type: filesystem, root: "${ws.dir}/staging-kv" }
kv: ${kv}
units: ["${env.database}.kv_src"]
mode: incremental
`;
    const file = await ws.write(
      'kv.yaml',
      pipeline(`{ type: mysql, connectionString: "\${env:NUCLEUS_MYSQL_URL}", table: cli_kv }`),
    );
    const opts = { env: { NUCLEUS_MYSQL_URL: env.url } };
    const first = await runCli(['--json', 'run', file], opts);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines.find((l) => l.type === 'unit.finished')).toMatchObject({ stats: { rowsImported: 120 } });
    // the checkpoint and the run state live in the table the pipeline file names
    const entries = await env.query<any[]>('SELECT CAST(value AS CHAR) AS v FROM cli_kv');
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.map((e) => String(e.v)).join('\n')).toContain('"120"');

    await env.query("INSERT INTO kv_src SELECT seq, CONCAT('v', seq) FROM seq_121_to_150");
    const second = await runCli(['--json', 'run', file], opts);
    expect(second.code).toBe(0);
    expect(second.lines.find((l) => l.type === 'unit.finished')).toMatchObject({ stats: { rowsImported: 30 } });
    const [c] = await env.query<any[]>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM kv_dst');
    expect([Number(c.n), Number(c.d)]).toEqual([150, 150]);

    const bad = await ws.write('bad.yaml', pipeline('{ type: mysql, connectionString: "postgres://x@h/db" }'));
    const r = await runCli(['--json', 'run', bad], opts);
    expect(r.code).toBe(2);
    expect(r.stderr + JSON.stringify(r.lines)).toContain('kv.connectionString');
  });
});
