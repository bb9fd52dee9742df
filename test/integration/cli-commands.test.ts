import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './cli-helpers.js';

async function pipelineFile() {
  const ws = await workspace();
  const file = await ws.write('pipeline.json', {
    source: { type: 'sample', id: 'crm', config: { units: { users: { rows: 120, batchSize: 50 } } } },
    sink: { type: 'object-store', id: 'lake', config: { root: join(ws.dir, 'lake'), format: 'ndjson' } },
    staging: { type: 'filesystem', root: join(ws.dir, 'staging') },
    kv: { type: 'file', path: join(ws.dir, 'kv-store.json') },
    units: ['users'],
  });
  return { ws, file };
}

describe('nucleus-ingest templates, preview, status, sweep', { timeout: 300_000 }, () => {
  it('templates lists every built-in endpoint with its config as JSON Schema', async () => {
    const res = await runCli(['--json', 'templates']);
    expect(res.code).toBe(0);
    const templates = res.lines.filter((l) => l.type === 'template');
    expect(templates.map((t) => `${t.role}:${t.id}`).sort()).toEqual([
      // postgres and mysql endpoints are listed because their optional peers (pg, pg-copy-streams, kysely, mysql2)
      // are installed here
      'sink:cdm.jdbc',
      'sink:mysql',
      'sink:object-store',
      'sink:postgres',
      'source:http.json',
      'source:memory',
      'source:mysql',
      'source:nats.jetstream',
      'source:postgres',
      'source:postgres.cdc',
      'source:sample',
    ]);
    const sink = templates.find((t) => t.id === 'object-store');
    expect(sink?.configSchema.type).toBe('object');
    expect(sink?.configSchema.required).toEqual(expect.arrayContaining(['root', 'format']));
    expect(templates.find((t) => t.id === 'sample')?.capabilities).toContain('ingest.incremental');
  });

  it('preview prints the first rows as plain JSON and changes no state', async () => {
    const { ws, file } = await pipelineFile();
    const res = await runCli(['--json', 'preview', file, 'users', '--limit', '3']);
    expect(res.code).toBe(0);
    const doc = res.lines.find((l) => l.type === 'preview');
    expect(doc?.rows).toEqual([
      { id: 1, name: 'user-1', amount: expect.any(Number), created_at: '2024-01-01T00:01:00.000Z' },
      { id: 2, name: 'user-2', amount: expect.any(Number), created_at: '2024-01-01T00:02:00.000Z' },
      { id: 3, name: 'user-3', amount: expect.any(Number), created_at: '2024-01-01T00:03:00.000Z' },
    ]);
    expect(doc?.schema.fields.map((f: { name: string }) => f.name)).toEqual(['id', 'name', 'amount', 'created_at']);
    expect(existsSync(join(ws.dir, 'kv-store.json'))).toBe(false);
    expect((await runCli(['--json', 'preview', file, 'users', '--limit', 'many'])).code).toBe(2);
  });

  it('status shows checkpoint, run state and lease; sweep deletes landed staging older than the duration', async () => {
    const { ws, file } = await pipelineFile();
    const before = await runCli(['--json', 'status', file, 'users']);
    expect(before.code).toBe(0);
    expect(before.lines[0]).toMatchObject({ type: 'status', checkpoint: null, run: null, lease: null, schema: null });
    expect(before.lines[0].key.key).toBe('ingest::sample::endpoint::crm::unit::users::sink::lake');

    const run = await runCli(['--json', 'run', file]);
    expect(run.code).toBe(0);
    const runId = run.lines.find((l) => l.type === 'unit.finished')?.runId;

    const after = await runCli(['--json', 'status', file, 'users']);
    const status = after.lines[0];
    expect(status.checkpoint).toMatchObject({ value: { lastId: 120 }, version: 1 });
    expect(status.run.value).toMatchObject({ runId, phase: 'committed' });
    expect(status.lease).toMatchObject({ live: false, value: { state: 'released', runId } });
    // the schema the run loaded is the unit's version 1
    expect(status.schema).toMatchObject({ version: 1, lastChange: null });
    expect(status.schema.columns).toBeGreaterThan(0);

    const runDir = join(ws.dir, 'staging', 'ingestion', 'default', 'crm', runId);
    expect(existsSync(join(runDir, '_LANDED'))).toBe(true);
    const keep = await runCli(['--json', 'sweep', file, '--older-than', '7d']);
    expect(keep.code).toBe(0);
    expect(keep.lines[0]).toMatchObject({ type: 'sweep', sessionsDeleted: 0 });
    expect(existsSync(join(runDir, '_LANDED'))).toBe(true);

    const sweep = await runCli(['--json', 'sweep', file, '--older-than', '0s']);
    expect(sweep.code).toBe(0);
    expect(sweep.lines[0]).toMatchObject({ type: 'sweep', sessionsDeleted: 1 });
    expect(existsSync(join(runDir, '_LANDED'))).toBe(false);

    const usage = await Promise.all([
      runCli(['--json', 'sweep', file]),
      runCli(['--json', 'sweep', file, '--older-than', 'soon']),
      runCli(['--json', 'status', file]),
    ]);
    expect(usage.map((r) => r.code)).toEqual([2, 2, 2]);
  });
});
