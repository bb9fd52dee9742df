import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root (tests run the CLI from source: dist may not be built). */
export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (with `--json`; lines that are not JSON objects are left out). */
  lines: Array<Record<string, any>>;
}

/** Start `nucleus-ingest <args>` as a child process. */
export function startCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): { child: ChildProcess; done: Promise<CliRun> } {
  // stdout and stderr are pipes, as in a job runner or `| tee`
  const child = spawn(process.execPath, [...CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliRun>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => {
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
      res({ code, signal, stdout, stderr, lines });
    });
  });
  return { child, done };
}

/** Run `nucleus-ingest <args>` to completion. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliRun> {
  return startCli(args, opts).done;
}

/** A temp directory with a pipeline file (YAML text or a JSON object) in it. */
export async function workspace(): Promise<{
  dir: string;
  write(name: string, body: string | object): Promise<string>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'nucleus-cli-'));
  return {
    dir,
    async write(name, body) {
      const path = join(dir, name);
      await writeFile(path, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
      return path;
    },
  };
}

/** Every row the `object-store` sink wrote for a unit, following its `_CURRENT` pointer, in run and slice order. */
export async function sinkRows(root: string, unitId: string, prefix = 'raw'): Promise<Array<Record<string, unknown>>> {
  const pointer = JSON.parse(await readFile(join(root, prefix, unitId, '_CURRENT'), 'utf8')) as {
    runs: Array<{ dir: string }>;
  };
  const rows: Array<Record<string, unknown>> = [];
  for (const run of pointer.runs) {
    const files = (await readdir(join(root, run.dir))).filter((f) => f.endsWith('.ndjson')).sort();
    for (const f of files) {
      const text = await readFile(join(root, run.dir, f), 'utf8');
      for (const line of text.split('\n')) if (line.trim()) rows.push(JSON.parse(line));
    }
  }
  return rows;
}
