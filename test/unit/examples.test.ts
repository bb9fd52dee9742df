/** The runnable examples keep running (they are also type-checked by `npm run typecheck`). */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../..');
const run = (file: string) =>
  execFileSync(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TSX_TSCONFIG_PATH: 'examples/tsconfig.json' },
  });

describe('examples', () => {
  it('quickstart moves 1000 rows, then only the new one', () => {
    const out = run('examples/quickstart.ts');
    // exactly what docs/getting-started.md says the same calls print
    expect(out).toContain('\n1000 { cursor: 1000 }\n');
    expect(out).toMatch(/\n1 1001\n$/);
  });

  it('custom-connector registers, validates and runs a hand-written source and sink', () => {
    const out = run('examples/custom-connector.ts');
    expect(out).toMatch(/^42 rows into .*fib\.ndjson; checkpoint \{ index: 42 \}/m);
  });
});
