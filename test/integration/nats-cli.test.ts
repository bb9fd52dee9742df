/**
 * `nucleus-ingest` with a `nats.jetstream` source: a pipeline file runs a stream unit into PostgreSQL, `status` shows
 * the unit's lag (messages after the checkpoint), `templates` lists the endpoint.
 */
import { describe, expect, it } from 'vitest';
import { useNats } from '../helpers/nats.js';
import { usePostgres } from '../helpers/pg.js';
import { runCli, workspace } from './cli-helpers.js';

const pg = usePostgres('natscli');
const nats = useNats();

describe('nucleus-ingest with a JetStream source', { timeout: 300_000 }, () => {
  it('runs a stream unit from a pipeline file; status shows the pending count before and after', async () => {
    const stream = await nats.stream('cli');
    await nats.publish(
      `${stream}.orders`,
      Array.from({ length: 30 }, (_, i) => ({ id: i + 1, total: i * 1.5 })),
    );
    const ws = await workspace();
    const file = await ws.write(
      'nats.yaml',
      `source:
  type: nats.jetstream
  id: events
  config: { servers: "127.0.0.1:4222", stream: ${stream}, units: { orders: { subjects: ["${stream}.orders"] } }, maxMessages: 20 }
sink:
  type: postgres
  id: warehouse
  config: { connectionString: "\${env:NUCLEUS_PG_URL}", schema: ${pg.schema} }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: file, path: "${ws.dir}/kv-store.json" }
units: [orders]
`,
    );
    const opts = { env: { NUCLEUS_PG_URL: pg.url } };
    const before = await runCli(['--json', 'status', file, 'orders'], opts);
    expect(before.code).toBe(0);
    expect(before.lines[0]).toMatchObject({ type: 'status', checkpoint: null, lag: { pending: 30 } });

    const first = await runCli(['--json', 'run', file], opts);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'ok',
      stats: { rowsImported: 20 },
    });
    const mid = await runCli(['--json', 'status', file, 'orders'], opts);
    expect(mid.lines[0]).toMatchObject({ checkpoint: { value: { stream, seq: 20 } }, lag: { pending: 10 } });

    expect((await runCli(['--json', 'run', file], opts)).code).toBe(0);
    const after = await runCli(['status', file, 'orders'], opts);
    expect(after.stdout).toContain('lag');
    expect(after.stdout).toMatch(/0 messages after the checkpoint/);
    const rows = await pg.query(
      `SELECT count(*)::int AS n, count(DISTINCT stream_seq)::int AS d FROM "${pg.schema}".orders`,
    );
    expect(rows.rows[0]).toEqual({ n: 30, d: 30 });

    const templates = await runCli(['--json', 'templates']);
    const t = templates.lines.find((l) => l.type === 'template' && l.id === 'nats.jetstream');
    expect(t?.configSchema.required).toEqual(expect.arrayContaining(['stream', 'units']));
  });
});
