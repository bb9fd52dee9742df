/**
 * Extract the ```ts code blocks of docs/**\/*.md and type-check them as modules, with `@nucleus/ingestion` and its
 * subpaths mapped to src/ (like examples/tsconfig.json). Blocks fenced as ```ts nocheck are skipped.
 *
 * Used by test/unit/docs-typecheck.test.ts; runnable alone: `npx tsx scripts/docs-code-blocks.ts`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** One fenced TypeScript block of a Markdown page. */
export interface DocBlock {
  /** Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line in the Markdown file. */
  line: number;
  code: string;
}

/** A type error located in the Markdown source. */
export interface DocDiagnostic {
  file: string;
  line: number;
  message: string;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function markdownFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(repoRoot, 'docs', 'api')) out.push(...markdownFiles(path));
    } else if (entry.name.endsWith('.md')) out.push(path);
  }
  return out.sort();
}

/** Every ```ts / ```typescript block under docs/, except those marked `nocheck`. */
export function extractBlocks(docsDir = join(repoRoot, 'docs')): DocBlock[] {
  const blocks: DocBlock[] = [];
  for (const path of markdownFiles(docsDir)) {
    const lines = readFileSync(path, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b(.*)$/.exec(lines[i]!);
      if (!open) continue;
      const fence = open[2]!;
      const skip = /\bnocheck\b/.test(open[4]!);
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !lines[j]!.trimStart().startsWith(fence)) body.push(lines[j++]!);
      if (!skip) blocks.push({ file: relative(repoRoot, path), line: i + 2, code: body.join('\n') });
      i = j;
    }
  }
  return blocks;
}

/** Type-check every block as its own module; returns errors located in the Markdown. */
export function typecheckBlocks(blocks: DocBlock[]): DocDiagnostic[] {
  // Inside the repository, so the nearest package.json ("type": "module") makes the blocks ES modules.
  const tmp = join(repoRoot, '.tmp', `docs-typecheck-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const byFile = new Map<string, DocBlock>();
    blocks.forEach((b, n) => {
      const name = join(tmp, `${b.file.replace(/[^A-Za-z0-9]+/g, '_')}_${b.line}_${n}.ts`);
      // `export {}` keeps a block without imports a module; it goes last so line numbers match.
      writeFileSync(name, `${b.code}\nexport {};\n`);
      byFile.set(resolve(name), b);
    });
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noImplicitOverride: true,
      esModuleInterop: true,
      skipLibCheck: true,
      resolveJsonModule: true,
      isolatedModules: true,
      noEmit: true,
      types: ['node'],
      baseUrl: repoRoot,
      paths: {
        '@nucleus/ingestion': ['src/index.ts'],
        '@nucleus/ingestion/*': ['src/*/index.ts'],
      },
    };
    const program = ts.createProgram([...byFile.keys()], options);
    const out: DocDiagnostic[] = [];
    // Only the blocks' own diagnostics: checking all of src/ is tsc's business (and would triple the time).
    const diagnostics = [...byFile.keys()].flatMap((name) => {
      const sf = program.getSourceFile(name);
      return sf ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [];
    });
    for (const d of diagnostics) {
      const block = d.file ? byFile.get(resolve(d.file.fileName)) : undefined;
      if (!block || !d.file || d.start === undefined) continue;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      out.push({
        file: block.file,
        line: block.line + line,
        message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
      });
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const blocks = extractBlocks();
  const errors = typecheckBlocks(blocks);
  for (const e of errors) console.error(`${e.file}:${e.line}: ${e.message}`);
  console.log(`${blocks.length} blocks, ${errors.length} errors`);
  process.exitCode = errors.length > 0 ? 1 : 0;
}
