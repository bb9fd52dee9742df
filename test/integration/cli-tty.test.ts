import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, sinkRows, workspace } from './cli-helpers.js';

const exec = promisify(execFile);
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run a command under a pseudo-terminal with util-linux `script`; returns what the terminal received. */
async function underPty(args: string[]): Promise<{ output: string; code: number }> {
  const command = [process.execPath, ...CLI, ...args].map(quote).join(' ');
  // -q quiet, -e return the child's exit code, -c the command; the typescript goes to /dev/null
  const res = await exec('script', ['-qec', command, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', COLUMNS: '120' },
  }).then(
    (r) => ({ output: r.stdout, code: 0 }),
    (e: { stdout?: string; code?: number }) => ({ output: e.stdout ?? '', code: e.code ?? -1 }),
  );
  return res;
}

describe('nucleus-ingest on a terminal (pseudo-terminal via script)', { timeout: 300_000 }, () => {
  beforeAll(async () => {
    // fail loudly when the tool is missing: this test must not silently pass
    await exec('script', ['--version']);
  });

  it('draws a live progress bar redrawn in place and prints a summary table, not JSON', async () => {
    const ws = await workspace();
    const file = await ws.write(
      'pipeline.yaml',
      `source: { type: sample, id: crm, config: { units: { users: { rows: 3000, batchSize: 100, delayMs: 40 } } } }
sink: { type: object-store, id: lake, config: { root: "${join(ws.dir, 'lake')}", format: ndjson } }
staging: { type: filesystem, root: "${join(ws.dir, 'staging')}" }
kv: { type: file, path: "${join(ws.dir, 'kv-store.json')}" }
policy: { sliceMaxRows: 1000 }
`,
    );
    const { output, code } = await underPty(['run', file, '--unit', 'users']);
    expect(code).toBe(0);
    // redrawn in place: carriage return + erase line, several frames
    const frames = output.split('\r\x1b[2K').filter((f) => f.includes('users'));
    expect(frames.length).toBeGreaterThan(3);
    // a bar with percentage, rows, rows/s and slices; ETA while rows remain (the planner estimates the total)
    expect(output).toMatch(/users\s+exporting\s+\[[█░]{24}\]\s+\d+%/);
    expect(output).toMatch(/\[█{24}\]\s+100%\s+3,000 rows/);
    expect(output).toMatch(/[\d,]+ rows\/s/);
    expect(output).toMatch(/slices \d\/3/);
    expect(output).toMatch(/ETA /);
    // the summary table
    const plain = output.replaceAll('\x1b[2K', '');
    expect(plain).toMatch(/unit\s+status\s+exported\s+imported\s+slices\s+staged\s+time\s+rows\/s\s+checkpoint/);
    expect(plain).toMatch(/users\s+ok\s+3,000\s+3,000\s+3\s+/);
    expect(plain).toContain('{"lastId":3000}');
    // no JSON lines on a terminal
    expect(output).not.toContain('"type":"run.started"');
    expect((await sinkRows(join(ws.dir, 'lake'), 'users')).length).toBe(3000);

    // status reads as a few lines on a terminal
    const status = await underPty(['status', file, 'users']);
    expect(status.code).toBe(0);
    expect(status.output).toMatch(/checkpoint\s+\{"lastId":3000\}\s+\(KvStore entry version 1,/);
    expect(status.output).toMatch(/last run\s+\S+ committed\s+exported 3000, imported 3000, slices 3/);
    expect(status.output).toMatch(/lease\s+free/);

    // one-shot commands draw no progress line or spinner on a terminal either
    for (const args of [['templates'], ['preview', file, 'users', '--limit', '1'], ['status', file, 'users']]) {
      const res = await underPty(args);
      expect(res.code, args[0]).toBe(0);
      expect(res.output, args[0]).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
      expect(res.output, args[0]).not.toContain('\x1b[2K');
    }
  });

  it('prints usage errors readably and exits 2', async () => {
    const { output, code } = await underPty(['run']);
    expect(code).toBe(2);
    expect(output).toMatch(/error \[config_invalid\]: run needs a pipeline file/);
  });
});
