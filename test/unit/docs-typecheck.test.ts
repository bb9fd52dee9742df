import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractBlocks, typecheckBlocks } from '../../scripts/docs-code-blocks.js';

describe('docs code blocks', () => {
  it('every ```ts block in docs/ type-checks against src', { timeout: 120_000 }, () => {
    const blocks = extractBlocks();
    expect(blocks.length).toBeGreaterThan(0);
    const errors = typecheckBlocks(blocks);
    expect(errors.map((e) => `${e.file}:${e.line}: ${e.message}`)).toEqual([]);
  });

  it('reports a broken block with its Markdown file and line, and skips blocks marked nocheck', {
    timeout: 120_000,
  }, () => {
    const dir = join(process.cwd(), '.tmp', `docs-fixture-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(
        join(dir, 'page.md'),
        [
          '# Page',
          '',
          '```ts',
          "const code = 'aborted';",
          'const n: number = code;',
          '```',
          '',
          '```ts nocheck',
          'this is not TypeScript',
          '```',
        ].join('\n'),
      );
      const blocks = extractBlocks(dir);
      expect(blocks).toHaveLength(1);
      const errors = typecheckBlocks(blocks);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ line: 5, message: expect.stringContaining('not assignable to type') });
      expect(errors[0]!.file).toMatch(/page\.md$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
