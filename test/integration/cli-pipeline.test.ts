/**
 * The pipeline's promises as a CLI user meets them (issue 11 items 4, 5, 7; issue 10 item 8): an unknown unit is
 * refused before any state exists, an incremental run with nothing new leaves the checkpoint version unchanged,
 * and `nucleus-ingest abandon` drops a pending run. Assertions are on state (KvStore file, staging folder) and exit
 * codes, not on the output format.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileKvStore } from '../../src/fs/index.js';
import { checkpointKey } from '../../src/index.js';
import { runStateKey } from '../../src/pipeline/keys.js';
import { runCli, workspace } from './cli-helpers.js';

function pipeline(dir: string, opts: { rows?: number; sinkRoot?: string } = {}): string {
  return `source:
  type: sample
  id: crm
  config:
    units:
      users: { rows: ${opts.rows ?? 600}, batchSize: 100 }
sink:
  type: object-store
  id: lake
  config: { root: "${opts.sinkRoot ?? join(dir, 'lake')}", format: ndjson }
staging: { type: filesystem, root: "${join(dir, 'staging')}" }
kv: { type: file, path: "${join(dir, 'kv-store.json')}" }
units: [users]
policy: { sliceMaxRows: 250, retry: { maxAttempts: 1 } }
`;
}

const unitKey = (unitId: string) =>
  checkpointKey({ vendor: 'sample', endpointId: 'crm', unitId, sinkId: 'lake', workspaceId: 'default' });

/** Every file below `dir` (relative paths); [] when it does not exist. */
async function files(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe('nucleus-ingest and the run lifecycle (child process)', { timeout: 300_000 }, () => {
  it('run -u <unknown unit>: exit 2 with config_invalid naming the unit; no KvStore entry, no staging', async () => {
    const ws = await workspace();
    const file = await ws.write('pipeline.yaml', pipeline(ws.dir));
    const out = await runCli(['run', file, '-u', 'nope', '--json']);
    expect(out.code).toBe(2);
    expect(`${out.stdout}${out.stderr}`).toContain('config_invalid');
    expect(`${out.stdout}${out.stderr}`).toContain('"nope"');
    const kv = new FileKvStore({ path: join(ws.dir, 'kv-store.json') });
    for (const k of [
      unitKey('nope'),
      runStateKey(unitKey('nope')),
      { ...unitKey('nope'), key: `${unitKey('nope').key}::lease` },
    ]) {
      expect(await kv.get(k)).toBeUndefined();
    }
    expect(await files(join(ws.dir, 'staging'))).toEqual([]);
  });

  it('a second incremental run with nothing new: exit 0, checkpoint version unchanged, nothing staged', async () => {
    const ws = await workspace();
    const file = await ws.write('pipeline.yaml', pipeline(ws.dir));
    expect((await runCli(['run', file, '--json'])).code).toBe(0);
    const kv = new FileKvStore({ path: join(ws.dir, 'kv-store.json') });
    const first = await kv.get(unitKey('users'));
    expect(first?.version).toBe(1);
    const staged = await files(join(ws.dir, 'staging'));
    const second = await runCli(['run', file, '--json']);
    expect(second.code).toBe(0);
    const after = await new FileKvStore({ path: join(ws.dir, 'kv-store.json') }).get(unitKey('users'));
    expect(after?.version).toBe(1);
    expect(after?.value).toEqual(first?.value);
    expect(await files(join(ws.dir, 'staging'))).toEqual(staged);
  });

  it('abandon -u <unit> drops a pending run: checkpoint unchanged, session marked; the next run starts afresh', async () => {
    const ws = await workspace();
    // A sink root under a regular file: every import fails, so the run stays pending after its export.
    await writeFile(join(ws.dir, 'not-a-dir'), 'x');
    const broken = await ws.write('broken.yaml', pipeline(ws.dir, { sinkRoot: join(ws.dir, 'not-a-dir', 'lake') }));
    const failed = await runCli(['run', broken, '--json']);
    expect(failed.code).not.toBe(0);
    const kvPath = join(ws.dir, 'kv-store.json');
    const pending = (await new FileKvStore({ path: kvPath }).get(runStateKey(unitKey('users'))))?.value as {
      runId: string;
      phase: string;
    };
    expect(['exported', 'importing']).toContain(pending.phase);

    const noUnit = await runCli(['abandon', broken, '--json']);
    expect(noUnit.code).toBe(2);

    const dropped = await runCli(['abandon', broken, '-u', 'users', '--json']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toContain(pending.runId);
    const kv = new FileKvStore({ path: kvPath });
    expect(await kv.get(unitKey('users'))).toBeUndefined();
    expect((await kv.get(runStateKey(unitKey('users'))))?.value).toMatchObject({
      runId: pending.runId,
      phase: 'abandoned',
    });
    expect(
      (await files(join(ws.dir, 'staging'))).some((f) => f.includes(pending.runId) && f.endsWith('_ABANDONED')),
    ).toBe(true);

    // Nothing pending any more: a second abandon is refused (permanent, exit 4).
    const again = await runCli(['abandon', broken, '-u', 'users', '--json']);
    expect(again.code).toBe(4);
    expect(`${again.stdout}${again.stderr}`).toContain('run_state_invalid');

    // With the sink fixed, the next run is a fresh one that loads every row.
    const fixed = await ws.write('pipeline.yaml', pipeline(ws.dir));
    const ok = await runCli(['run', fixed, '--json']);
    expect(ok.code).toBe(0);
    const state = (await new FileKvStore({ path: kvPath }).get(runStateKey(unitKey('users'))))?.value as {
      runId: string;
      phase: string;
      rowsImported: number;
    };
    expect(state).toMatchObject({ phase: 'committed', rowsImported: 600 });
    expect(state.runId).not.toBe(pending.runId);
  });
});
