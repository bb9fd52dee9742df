/** One way to name units for every command, unknown units refused, tables that escape control characters, prune. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './cli-helpers.js';

async function pipelineFile(extra: Record<string, unknown> = {}) {
  const ws = await workspace();
  const file = await ws.write('pipeline.json', {
    source: { type: 'sample', id: 'crm', config: { units: { users: { rows: 30, batchSize: 10 } } } },
    sink: { type: 'object-store', id: 'lake', config: { root: join(ws.dir, 'lake'), format: 'ndjson' } },
    staging: { type: 'filesystem', root: join(ws.dir, 'staging') },
    kv: { type: 'file', path: join(ws.dir, 'kv-store.json') },
    units: ['users'],
    ...extra,
  });
  return { ws, file };
}

describe('nucleus-ingest: units, prune, tables (ADR 0017)', { timeout: 300_000 }, () => {
  it('every command takes the unit positionally or with -u; an unknown unit exits 2', async () => {
    const { file } = await pipelineFile();
    expect((await runCli(['--json', 'run', file, 'users'])).code).toBe(0);
    const [pos, flag, preview, previewFlag] = await Promise.all([
      runCli(['--json', 'status', file, 'users']),
      runCli(['--json', 'status', file, '-u', 'users']),
      runCli(['--json', 'preview', file, 'users', '--limit', '1']),
      runCli(['--json', 'preview', file, '-u', 'users', '--limit', '1']),
    ]);
    for (const r of [pos, flag, preview, previewFlag]) expect(r.code, r.stderr).toBe(0);
    expect(flag.lines[0]).toMatchObject({ type: 'status', checkpoint: { version: 1 } });
    // abandon: positional like the others (nothing pending: run_state_invalid, a permanent refusal, not a usage error)
    const abandonPos = await runCli(['abandon', file, 'users']);
    const abandonFlag = await runCli(['abandon', file, '-u', 'users']);
    expect(abandonPos.stderr).toMatch(/error \[run_state_invalid\]/);
    expect(abandonFlag.stderr).toMatch(/error \[run_state_invalid\]/);
    const unknown = await Promise.all([
      runCli(['status', file, 'nope']),
      runCli(['preview', file, '-u', 'nope']),
      runCli(['abandon', file, 'nope']),
      runCli(['run', file, '-u', 'nope']),
      runCli(['prune', file, 'nope', '--older-than', '1d']),
    ]);
    for (const r of unknown) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/Unknown unit "nope": the pipeline file lists "users"/);
    }
    expect((await runCli(['status', file, 'users', 'users'])).code).toBe(2);
  });

  it('prune expires receipts older than the duration and keeps the current run', async () => {
    const { file } = await pipelineFile();
    expect((await runCli(['run', file])).code).toBe(0);
    expect((await runCli(['run', file, '--mode', 'full'])).code).toBe(0);
    const kept = await runCli(['--json', 'prune', file, '--older-than', '1d']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.lines.find((l) => l.type === 'prune')).toMatchObject({
      type: 'prune',
      receiptsDeleted: 0,
      receiptsKept: 2,
    });
    const pruned = await runCli(['--json', 'prune', file, 'users', '--older-than', '0s']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.lines.find((l) => l.type === 'prune')).toMatchObject({
      type: 'prune',
      receiptsDeleted: 1,
      receiptsKept: 1,
    });
    expect((await runCli(['prune', file])).code).toBe(2); // --older-than is required
  });

  it('preview escapes tabs, newlines and escape sequences in its table; status labels the entry version', async () => {
    const { file } = await pipelineFile({
      source: {
        type: 'memory',
        id: 'mem',
        config: { units: { users: { rows: [{ id: 1, note: 'a\tb\nc\u001b[31mred' }], cursorColumns: ['id'] } } },
      },
    });
    const res = await runCli(['preview', file, 'users']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('a\\tb\\nc\\u001b[31mred');
    expect(res.stdout).not.toContain('\u001b');
    expect(res.stdout).not.toMatch(/a\tb/);
    expect((await runCli(['run', file])).code).toBe(0);
    const status = await runCli(['status', file, 'users']);
    expect(status.stdout, status.stdout).toMatch(/\(KvStore entry version 1, written /);
  });
});
