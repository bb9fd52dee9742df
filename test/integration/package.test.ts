/**
 * The published artifact: build, pack, install the tarball into an empty project with exactly what the docs tell a
 * user to install, run the README Quick start and the getting-started snippets there unchanged, and prove the root
 * entry loads none of the heavy optional peers, class names survive bundling and no source map points outside the
 * package.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The ```ts blocks of a Markdown file, with the heading they are under. */
function tsBlocks(file: string): Array<{ heading: string; code: string }> {
  const out: Array<{ heading: string; code: string }> = [];
  let heading = '';
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('#')) heading = lines[i].replace(/^#+\s*/, '');
    if (!/^```(ts|typescript)\b/.test(lines[i])) continue;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i]);
    out.push({ heading, code: body.join('\n') });
  }
  return out;
}

/** Bare package specifiers a snippet imports. */
const importsOf = (code: string) => [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1]);

const root = resolve(__dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'nucleus-pack-'));
let project: string;

const HEAVY = [
  '@aws-sdk/',
  'pg',
  'pg-copy-streams',
  'kysely',
  'apache-arrow',
  'parquet-wasm',
  'hyparquet-writer',
  '@temporalio/',
  'vitest',
  'bullmq',
  'ioredis',
  '@nats-io/',
];

// A loader hook that records every bare specifier the process resolves.
const TRACE = `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('.') && !specifier.startsWith('node:') && !specifier.startsWith('file:') && !specifier.startsWith('data:')) {
    process.stderr.write('RESOLVE ' + specifier + '\\\\n');
  }
  return next(specifier, context);
}\`));
`;

beforeAll(() => {
  // JavaScript only, into a private directory: `npm run check:package` checks the declarations with publint and attw.
  execFileSync('npx', ['tsup', '--silent'], { cwd: root, stdio: 'pipe', env: { ...process.env, TSUP_NO_DTS: '1' } });
  execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: root, stdio: 'pipe' });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  project = join(work, 'app');
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // docs/getting-started.md: `npm install @nucleus/ingestion zod` — nothing else (no vitest, no pg).
  const install = /```sh\n(npm install @nucleus\/ingestion[^\n]*)\n```/.exec(
    readFileSync(join(root, 'docs/getting-started.md'), 'utf8'),
  )?.[1];
  expect(install).toBe('npm install @nucleus/ingestion zod');
  const packages = install!
    .split(' ')
    .slice(2)
    .map((p) => (p === '@nucleus/ingestion' ? join(work, tarball) : p));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', ...packages], {
    cwd: project,
    stdio: 'pipe',
  });
  writeFileSync(join(project, 'trace.mjs'), TRACE);
}, 600_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('packed package', () => {
  it('installs into an empty project and `import { runUnit }` works there', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { runUnit, MemoryStagingProvider, MemoryKvStore, IngestError } from '@nucleus/ingestion';
         console.log(typeof runUnit, typeof MemoryStagingProvider, typeof MemoryKvStore, typeof IngestError);`,
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('function function function function');
  });

  it('the root entry loads none of the heavy optional peers', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', './trace.mjs', '--input-type=module', '-e', "await import('@nucleus/ingestion')"],
      {
        cwd: project,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    const resolved = (r.stderr as string)
      .split('\n')
      .filter((l) => l.startsWith('RESOLVE '))
      .map((l) => l.slice(8));
    expect(resolved).toContain('@nucleus/ingestion');
    expect(resolved).toContain('zod');
    for (const heavy of HEAVY)
      expect(resolved.filter((s) => s === heavy || s.startsWith(heavy.endsWith('/') ? heavy : `${heavy}/`))).toEqual(
        [],
      );
  });

  it('every subpath entry imports in the installed project', () => {
    const pkg = JSON.parse(readFileSync(join(project, 'node_modules/@nucleus/ingestion/package.json'), 'utf8'));
    const subpaths = Object.keys(pkg.exports).filter((s) => s !== '.' && s !== './package.json');
    expect(subpaths).toEqual(
      expect.arrayContaining([
        './testing',
        './fs',
        './s3',
        './postgres',
        './arrow',
        './parquet',
        './http',
        './temporal',
      ]),
    );
    // Each subpath's file exists; './fs' needs no optional peer, so it must import.
    for (const sub of subpaths)
      expect(existsSync(join(project, 'node_modules/@nucleus/ingestion', pkg.exports[sub].default))).toBe(true);
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('@nucleus/ingestion/fs'); console.log(typeof m.FileSystemObjectStore, typeof m.FileKvStore)",
      ],
      {
        cwd: project,
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('function function');
  });
});

describe('the docs, run verbatim in the installed project', () => {
  const runSnippet = (name: string, code: string) => {
    const file = join(project, `${name}.mjs`);
    writeFileSync(file, code);
    return spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 60_000 });
  };

  it('the README Quick start runs and prints what its comment says', () => {
    expect(existsSync(join(project, 'node_modules/vitest'))).toBe(false);
    const [quick] = tsBlocks(join(root, 'README.md')).filter((b) => b.heading === 'Quick start');
    expect(quick).toBeDefined();
    const r = runSnippet('readme-quickstart', quick.code);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('run.completed');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 { cursor: 1 }');
  });

  it('every getting-started snippet that needs only the documented install runs', () => {
    const runnable = new Set(['@nucleus/ingestion', '@nucleus/ingestion/testing', '@nucleus/ingestion/fs']);
    const blocks = tsBlocks(join(root, 'docs/getting-started.md'));
    // The HTTP → Parquet block needs an API and `hyparquet-writer`; it is the e2e test http-parquet-e2e.test.ts.
    const local = blocks.filter((b) => importsOf(b.code).every((s) => runnable.has(s)));
    expect(local.map((b) => b.heading)).toEqual(['A first pipeline', 'Checkpoints that outlive the process']);
    local.forEach((b, n) => {
      const r = runSnippet(`getting-started-${n}`, b.code);
      expect(r.stderr, b.heading).toBe('');
      expect(r.status, b.heading).toBe(0);
      // each `console.log(…); // <expected>` prints what its comment says
      const expected = [...b.code.matchAll(/console\.log\([^\n]*\); \/\/ (.+)$/gm)].map((m) =>
        m[1].replace(/ — .*$/, ''),
      );
      expect(r.stdout.trim().split('\n'), b.heading).toEqual(expected);
    });
  });

  it('keeps class names and ships no source map pointing outside the package', () => {
    const pkgDir = join(project, 'node_modules/@nucleus/ingestion');
    const files = readdirSync(pkgDir, { recursive: true }) as string[];
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.some((f) => f.startsWith('src'))).toBe(false);
    for (const f of files.filter((f) => f.endsWith('.js')))
      expect(readFileSync(join(pkgDir, f), 'utf8'), f).not.toContain('sourceMappingURL');
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { IngestError } from '@nucleus/ingestion'; throw new IngestError('config_invalid', 'boom');",
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^IngestError: boom$/m);
    expect(r.stderr).not.toContain('_IngestError');
    expect(r.stderr).not.toMatch(/\bsrc\//);
  });
});
