/**
 * What a user sees when `nucleus-ingest` is piped (a job runner, `| tee`, CI): readable text on stdout without a
 * progress line, JSON lines only with `--json`, and every error on stderr as `error [code] …` with the documented
 * exit status (0 ok, 2 config, 3 retryable, 4 permanent).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './cli-helpers.js';

function pipeline(dir: string, opts: { sinkRoot?: string; extra?: string; kv?: string } = {}): string {
  return `source: { type: sample, id: crm, config: { units: { users: { rows: 600, batchSize: 100 } } } }
sink: { type: object-store, id: lake, config: { root: "${opts.sinkRoot ?? join(dir, 'lake')}", format: ndjson } }
staging: { type: filesystem, root: "${join(dir, 'staging')}" }
kv: ${opts.kv ?? `{ type: file, path: "${join(dir, 'kv-store.json')}" }`}
units: [users]
policy: { sliceMaxRows: 200, retry: { maxAttempts: 1 } }
${opts.extra ?? ''}
`;
}

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/** Text output: no JSON line, no carriage-return redraw, no spinner. */
function expectPlainText(stdout: string): void {
  expect(stdout).not.toMatch(/^\{/m);
  expect(stdout).not.toContain('\r');
  expect(stdout).not.toContain('\x1b[');
  expect(stdout).not.toMatch(SPINNER);
}

describe('nucleus-ingest piped output', { timeout: 300_000 }, () => {
  it('run prints readable text by default and JSON lines with --json', async () => {
    const ws = await workspace();
    const file = await ws.write('pipeline.yaml', pipeline(ws.dir));
    const text = await runCli(['run', file]);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    expectPlainText(text.stdout);
    expect(text.stdout).toMatch(/^users: run \S+ started \(incremental\)$/m);
    expect(text.stdout).toMatch(/unit\s+status\s+exported\s+imported\s+slices\s+staged\s+time\s+rows\/s\s+checkpoint/);
    expect(text.stdout).toMatch(/users\s+ok\s+600\s+600\s+3\s+/);
    expect(text.stdout).toContain('{"lastId":600}');
    expect(text.stdout.split('\n').length).toBeLessThan(10);

    const json = await runCli(['run', file, '--json']);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    const lines = json.stdout.trim().split('\n');
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    expect(json.lines.at(-1)).toMatchObject({ type: 'cli.summary', ok: true });
  });

  it('a sink failure a retry cannot cure (a file where the sink wants a directory): error [code] on stderr with what to do, exit 4; --json says the same on stderr', async () => {
    const ws = await workspace();
    const blocker = join(ws.dir, 'not-a-dir');
    await writeFile(blocker, 'a file where the sink wants a directory');
    const file = await ws.write('broken.yaml', pipeline(ws.dir, { sinkRoot: join(blocker, 'lake') }));
    const text = await runCli(['run', file]);
    // ENOTDIR is not transient: running the same command again would fail the same way (ADR 0017)
    expect(text.code).toBe(4);
    expect(text.stderr).toMatch(
      /^error \[\w+_failed\] users: .+\(permanent: fix the data, the target or the config first\)$/m,
    );
    expectPlainText(text.stdout);
    expect(text.stdout).toMatch(/users\s+failed \(\w+_failed\)/);

    const json = await runCli(['--json', 'run', file]);
    expect(json.code).toBe(4);
    expect(json.stderr).toMatch(/^error \[\w+_failed\] users: /m);
    expect(json.lines.find((l) => l.type === 'unit.finished')).toMatchObject({ error: { retryable: false } });
  });

  it('a permanent failure exits 4 and says so on stderr', async () => {
    const ws = await workspace();
    const file = await ws.write('merge.yaml', pipeline(ws.dir, { extra: 'disposition: merge\nprimaryKey: [id]' }));
    const res = await runCli(['run', file]);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/^error \[\w+\] users: .+\(permanent: /m);
  });

  it('usage and config errors: error [config_invalid] on stderr, exit 2, nothing on stdout', async () => {
    const ws = await workspace();
    const bad = await ws.write('bad.yaml', 'source: { type: sample }\nsink: { type: nope }\n');
    for (const args of [['run'], ['launch'], ['run', bad], ['run', bad, '--json'], ['run', bad, '--bogus']]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr, args.join(' ')).toMatch(/^error \[config_invalid\]/m);
      if (!args.includes('--json')) expect(res.stdout, args.join(' ')).toBe('');
    }
  });

  it('a malformed kv connection string is config_invalid naming the field, not retryable, exit 2', async () => {
    const ws = await workspace();
    for (const url of ['postgresql//oops', 'postgres://', 'garbage', 'postgres://u:pw@host:notaport/db']) {
      const file = await ws.write(
        'kv.yaml',
        pipeline(ws.dir, { kv: `{ type: postgres, connectionString: "${url}" }` }),
      );
      const res = await runCli(['--json', 'run', file]);
      expect(res.code, url).toBe(2);
      expect(res.stderr, url).toMatch(/^error \[config_invalid\]: .*kv\.connectionString/m);
      const error = res.lines.find((l) => l.type === 'cli.error')?.error;
      expect(error, url).toMatchObject({ code: 'config_invalid', retryable: false });
      expect(res.stderr + res.stdout, url).not.toContain('ENOTFOUND');
      expect(res.stderr + res.stdout).not.toContain('pw@');
    }
  });

  it('a malformed PostgreSQL sink or source connection string is config_invalid naming the field, exit 2', async () => {
    const ws = await workspace();
    for (const url of ['postgresql//oops', 'postgres://', 'not a url']) {
      const sinkFile = await ws.write(
        'sink.yaml',
        `source: { type: sample, id: crm, config: { units: { users: { rows: 5 } } } }
sink: { type: postgres, config: { connectionString: "${url}" } }
staging: { type: filesystem, root: "${join(ws.dir, 'staging')}" }
kv: { type: file, path: "${join(ws.dir, 'kv.json')}" }
units: [users]
`,
      );
      const sink = await runCli(['run', sinkFile]);
      expect(sink.code, url).toBe(2);
      expect(sink.stderr, url).toMatch(
        /^error \[config_invalid\]: .*sink.*connectionString: Expected `connectionString`/m,
      );
      const sourceFile = await ws.write(
        'source.yaml',
        `source: { type: postgres, config: { connectionString: "${url}" } }
sink: { type: object-store, config: { root: "${join(ws.dir, 'lake')}", format: ndjson } }
staging: { type: filesystem, root: "${join(ws.dir, 'staging')}" }
kv: { type: file, path: "${join(ws.dir, 'kv.json')}" }
units: [public.users]
`,
      );
      const source = await runCli(['run', sourceFile]);
      expect(source.code, url).toBe(2);
      expect(source.stderr, url).toMatch(/^error \[config_invalid\]: .*source.*connectionString/m);
    }
  });

  it('templates, preview and status print text when piped (no spinner, "(1 row)")', async () => {
    const ws = await workspace();
    const file = await ws.write('pipeline.yaml', pipeline(ws.dir));
    const templates = await runCli(['templates']);
    expect(templates.code).toBe(0);
    expectPlainText(templates.stdout);
    expect(templates.stdout).toMatch(/^id\s+role\s+family\s+capabilities\s+title$/m);
    expect(templates.stdout).toMatch(/^postgres\s+sink\s+\S+\s+\S*ingest/m);

    const one = await runCli(['preview', file, 'users', '--limit', '1']);
    expect(one.code).toBe(0);
    expectPlainText(one.stdout);
    expect(one.stdout).toMatch(/^id\s+name\s+amount\s+created_at$/m);
    expect(one.stdout).toMatch(/\n\(1 row\)\n$/);
    const three = await runCli(['preview', file, 'users', '--limit', '3']);
    expect(three.stdout).toMatch(/\n\(3 rows\)\n$/);

    const status = await runCli(['status', file, 'users']);
    expect(status.code).toBe(0);
    expectPlainText(status.stdout);
    expect(status.stdout).toMatch(/^checkpoint\s+none yet$/m);
  });

  it('previews and templates keep non-secret values; only env-reference secrets are masked', async () => {
    const ws = await workspace();
    const secret = `tok-${Math.random().toString(36).slice(2, 12)}`;
    const file = await ws.write('memory.yaml', {
      source: {
        type: 'memory',
        config: {
          units: {
            checks: {
              rows: [
                { id: 2, passed: false, token_count: 7, password_policy: 'strict', note: `$\{env:PREVIEW_SECRET}` },
                { id: 1, passed: true, token_count: 3, password_policy: 'lax', note: 'plain' },
              ],
            },
          },
        },
      },
      sink: { type: 'object-store', config: { root: join(ws.dir, 'lake'), format: 'ndjson' } },
      staging: { type: 'memory' },
      kv: { type: 'memory' },
    });
    const preview = await runCli(['--json', 'preview', file, 'checks'], { env: { PREVIEW_SECRET: secret } });
    expect(preview.code).toBe(0);
    expect(preview.stdout).not.toContain(secret);
    expect(preview.lines[0].rows).toEqual([
      { id: 2, passed: false, token_count: 7, password_policy: 'strict', note: '***' },
      { id: 1, passed: true, token_count: 3, password_policy: 'lax', note: 'plain' },
    ]);
    const templates = await runCli(['--json', 'templates']);
    const pgSink = templates.lines.find((l) => l.type === 'template' && l.id === 'postgres' && l.role === 'sink');
    expect(pgSink?.capabilities).toEqual(['ingest.full', 'ingest.incremental']);
    expect(pgSink?.configSchema.properties.connectionString).toMatchObject({ type: 'string', writeOnly: true });
    expect(templates.stdout).not.toContain('"***"');
  });
});
