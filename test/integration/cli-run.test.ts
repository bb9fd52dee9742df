import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, sinkRows, startCli, workspace } from './cli-helpers.js';

/** A pipeline on filesystem staging, a file KvStore and the `object-store` sink writing NDJSON files. */
function pipeline(
  dir: string,
  opts: { rows?: number; delayMs?: number; sinkRoot?: string; extra?: string } = {},
): string {
  return `# nucleus-ingest pipeline
source:
  type: sample
  id: crm
  config:
    units:
      users: { rows: ${opts.rows ?? 1000}, batchSize: 100, delayMs: ${opts.delayMs ?? 0} }
sink:
  type: object-store
  id: lake
  config: { root: "${opts.sinkRoot ?? join(dir, 'lake')}", format: ndjson }
staging: { type: filesystem, root: "${join(dir, 'staging')}" }
kv: { type: file, path: "${join(dir, 'kv-store.json')}" }
units: [users]
policy: { sliceMaxRows: 250, retry: { maxAttempts: 1 } }
${opts.extra ?? ''}
`;
}

const ids = (rows: Array<Record<string, unknown>>) => rows.map((r) => r.id);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

// Each case starts the CLI from source through tsx: about a second of CPU per process, far more wall time on a
// loaded machine, hence the generous timeouts.
describe('nucleus-ingest run (child process, JSON lines)', { timeout: 300_000 }, () => {
  it('runs a unit to the file sink, prints JSON-lines events and exits 0; a second run adds nothing', async () => {
    const ws = await workspace();
    const file = await ws.write('pipeline.yaml', pipeline(ws.dir));
    const first = await runCli(['--json', 'run', file]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const types = first.lines.map((l) => l.type);
    for (const t of [
      'run.started',
      'slice.staged',
      'export.completed',
      'import.progress',
      'checkpoint.committed',
      'run.completed',
    ]) {
      expect(types).toContain(t);
    }
    expect(first.lines.filter((l) => l.type === 'slice.staged')).toHaveLength(4);
    const finished = first.lines.find((l) => l.type === 'unit.finished');
    expect(finished).toMatchObject({
      unitId: 'users',
      status: 'ok',
      stats: { rowsExported: 1000, rowsImported: 1000, slices: 4 },
    });
    expect(finished?.newCheckpoint).toEqual({ lastId: 1000 });
    expect(first.lines.at(-1)).toMatchObject({ type: 'cli.summary', ok: true });
    expect(ids(await sinkRows(join(ws.dir, 'lake'), 'users'))).toEqual(range(1000));
    // staged on the filesystem, sealed and landed
    const runDir = join(ws.dir, 'staging', 'ingestion', 'default', 'crm', finished?.runId);
    const staged = await readdir(runDir);
    expect(staged).toEqual(expect.arrayContaining(['manifest.json', '_SUCCESS', '_LANDED']));

    const second = await runCli(['--json', 'run', file]);
    expect(second.code).toBe(0);
    expect(second.lines.find((l) => l.type === 'unit.finished')?.stats).toMatchObject({
      rowsExported: 0,
      rowsImported: 0,
    });
    expect(ids(await sinkRows(join(ws.dir, 'lake'), 'users'))).toEqual(range(1000));
  });

  it('exits 2 with config_invalid listing every issue of a bad pipeline file, before any I/O', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'bad.yaml',
      `source: { type: sample, config: { units: { users: { rows: -5 } } } }
sink: { type: no-such-sink, config: {} }
kv: { type: file, path: "${join(ws.dir, 'kv.json')}" }
staging: { type: filesystem, root: "${join(ws.dir, 'staging')}" }
`,
    );
    const res = await runCli(['--json', 'run', file, '--unit', 'users']);
    expect(res.code).toBe(2);
    const error = res.lines.find((l) => l.type === 'cli.error')?.error;
    expect(error?.code).toBe('config_invalid');
    expect(error?.message).toMatch(/units\.users\.rows/);
    expect(error?.message).toMatch(/no-such-sink/);
    expect(res.stderr).toMatch(/config_invalid/);
    expect(existsSync(join(ws.dir, 'kv.json'))).toBe(false);

    const unknownKey = await runCli([
      '--json',
      'run',
      await ws.write('extra.json', { source: { type: 'sample' }, sink: { type: 'object-store' }, sinks: [] }),
    ]);
    expect(unknownKey.code).toBe(2);
    expect(unknownKey.lines[0].error.message).toMatch(/sinks/);

    const missingEnv = await runCli([
      '--json',
      'run',
      await ws.write('env.yaml', pipeline(ws.dir, { sinkRoot: `$\{env:NUCLEUS_TEST_UNSET_DIR}` })),
    ]);
    expect(missingEnv.code).toBe(2);
    expect(missingEnv.lines[0].error.message).toMatch(/NUCLEUS_TEST_UNSET_DIR/);

    const usage = await Promise.all([
      runCli(['--json', 'launch', file]),
      runCli(['--json', 'run']),
      runCli(['--json', 'run', file, '--mode', 'sometimes']),
      runCli(['--json', 'run', file, '--no-such-flag']),
      runCli(['--json', 'run', file, '--schema-contract', 'loose']),
    ]);
    expect(usage.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(usage[4]!.stderr).toContain('--schema-contract');
  });

  it('a failing sink exits 4 (ENOTDIR is not transient) with the checkpoint unmoved and no secret in the output; once fixed, the next run resumes from staging', async () => {
    const ws = await workspace();
    const blocker = join(ws.dir, 'not-a-dir');
    await writeFile(blocker, 'a file where the sink wants a directory');
    const secret = 's3cr3t-sink-subdir-4711';
    const broken = await ws.write('broken.yaml', pipeline(ws.dir, { sinkRoot: `${blocker}/\${env:SINK_SUBDIR}` }));
    const failed = await runCli(['--json', 'run', broken], { env: { SINK_SUBDIR: secret } });
    expect(failed.code).toBe(4);
    const finished = failed.lines.find((l) => l.type === 'unit.finished');
    expect(finished).toMatchObject({ status: 'failed', error: { retryable: false } });
    expect(finished?.runId).toEqual(expect.any(String));
    expect(failed.lines.some((l) => l.type === 'run.failed')).toBe(true);
    expect(failed.stdout + failed.stderr).not.toContain(secret);
    expect(failed.stdout).toContain('***');

    const status = await runCli(['--json', 'status', broken, 'users'], { env: { SINK_SUBDIR: secret } });
    expect(status.code).toBe(0);
    const doc = status.lines.find((l) => l.type === 'status');
    expect(doc?.checkpoint).toBeNull();
    expect(doc?.run.value.phase).toBe('importing');
    expect(doc?.lease.live).toBe(false);

    // fix the sink (same ids, so the same unit): the staged export is imported without reading the source again
    const fixed = await ws.write('fixed.yaml', pipeline(ws.dir));
    const ok = await runCli(['--json', 'run', fixed]);
    expect(ok.code).toBe(0);
    expect(ok.lines.find((l) => l.type === 'run.resumed')).toMatchObject({ phase: 'importing' });
    expect(ok.lines.some((l) => l.type === 'slice.staged')).toBe(false);
    expect(ok.lines.find((l) => l.type === 'unit.finished')?.runId).toBe(finished?.runId);
    expect(ids(await sinkRows(join(ws.dir, 'lake'), 'users'))).toEqual(range(1000));
  });

  it('a permanent failure exits 4', async () => {
    const ws = await workspace();
    // raw files have no keys to merge on: the object-store sink refuses `merge` (unsupported, not retryable)
    const file = await ws.write('merge.yaml', pipeline(ws.dir, { extra: 'disposition: merge\nprimaryKey: [id]' }));
    const res = await runCli(['--json', 'run', file]);
    expect(res.code).toBe(4);
    expect(res.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'failed',
      error: { retryable: false },
    });
  });

  it('Ctrl-C (SIGINT) aborts cleanly with exit 130; the next run resumes and lands every row once', async () => {
    const ws = await workspace();
    const file = await ws.write('slow.yaml', pipeline(ws.dir, { rows: 2000, delayMs: 60 }));
    const { child, done } = startCli(['--json', 'run', file]);
    let out = '';
    await new Promise<void>((res) => {
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('"slice.staged"')) res();
      });
    });
    child.kill('SIGINT');
    const aborted = await done;
    expect(aborted.code).toBe(130);
    expect(aborted.lines.find((l) => l.type === 'unit.finished')).toMatchObject({
      status: 'aborted',
      error: { code: 'aborted' },
    });
    expect(existsSync(join(ws.dir, 'lake', 'raw', 'users', '_CURRENT'))).toBe(false);

    const resumed = await runCli(['--json', 'run', file]);
    expect(resumed.code).toBe(0);
    const resumedEvent = resumed.lines.find((l) => l.type === 'run.resumed');
    expect(resumedEvent?.phase).toBe('exporting');
    expect(resumedEvent?.slicesKept).toBeGreaterThan(0);
    expect(ids(await sinkRows(join(ws.dir, 'lake'), 'users'))).toEqual(range(2000));
  });
});
