/**
 * The published artifact: build, pack, install the tarball into an empty project, import it there, and prove
 * the root entry loads none of the heavy optional peers.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', join(work, tarball)],
    { cwd: project, stdio: 'pipe' },
  );
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
