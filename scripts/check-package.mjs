// Pack the package and check it the way consumers see it: publint (package.json, exports) and
// @arethetypeswrong/cli (types resolve for every subpath under node16/bundler resolution).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'nucleus-check-'));
try {
  execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { stdio: 'inherit' });
  const tarball = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.tgz')),
  );
  execFileSync('npx', ['publint', '--strict', tarball], { stdio: 'inherit' });
  // ESM-only package: CJS consumers on Node 20.19+/22 use require(esm); attw's cjs view is informational.
  execFileSync('npx', ['attw', tarball, '--profile', 'esm-only'], { stdio: 'inherit' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
