/**
 * The public API report: for every entry point of package.json "exports" (`.` → src/index.ts, `./x` → src/x/index.ts),
 * the declarations it exports as TypeScript emits them (.d.ts, comments dropped, `@deprecated`/`@internal` kept),
 * sorted by name; names it borrows from another entry point as an `import type` line; and, in full, what it references
 * that no entry point exports. One `api/<entry>.api.md` per entry point (`index`, `testing-vitest`, …).
 *
 * `npm run api:update` rewrites api/; test/unit/api-report.test.ts regenerates it in memory and fails on a difference,
 * so a change of the public API shows up in review, in the same commit (docs/decisions/0012-public-api-report.md).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the emitted declarations live, in memory only (never written; a real `dist/` is not read). */
const virtualDir = join(root, '.api-report-dts');
const apiDir = join(root, 'api');

/** One package entry point: its subpath, its report file name and its barrel. */
interface Entry {
  specifier: string;
  file: string;
  source: string;
}

function entries(): Entry[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; exports: object };
  return Object.keys(pkg.exports)
    .filter((k) => k !== './package.json')
    .map((k) => {
      const sub = k.slice(2);
      return {
        specifier: sub ? `${pkg.name}/${sub}` : pkg.name,
        file: `${sub ? sub.replace(/\//g, '-') : 'index'}.api.md`,
        source: join(root, 'src', sub, 'index.ts'),
      };
    });
}

/** Emit the declarations of every file the entry points reach, in memory: .d.ts path → text. */
function emitDeclarations(files: string[], host: ts.CompilerHost, options: ts.CompilerOptions): Map<string, string> {
  const out = new Map<string, string>();
  const result = ts
    .createProgram(files, options, host)
    .emit(undefined, (f, text) => out.set(resolve(f), text), undefined, true);
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) throw new Error(ts.formatDiagnostics(errors, host));
  return out;
}

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile).config;
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root);
  return {
    ...options,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    sourceMap: false,
    noEmit: false,
    outDir: virtualDir,
    rootDir: root,
  };
}

/** A compiler host that caches parsed files (both programs share lib and node_modules) and serves `dts` from memory. */
function cachingHost(options: ts.CompilerOptions, dts: Map<string, string>): ts.CompilerHost {
  const host = ts.createCompilerHost(options, true);
  const cache = new Map<string, ts.SourceFile | undefined>();
  const inVirtual = (f: string) => resolve(f).startsWith(virtualDir);
  return {
    ...host,
    fileExists: (f) => (inVirtual(f) ? dts.has(resolve(f)) : host.fileExists(f)),
    readFile: (f) => (inVirtual(f) ? dts.get(resolve(f)) : host.readFile(f)),
    directoryExists: (d) => inVirtual(d) || (host.directoryExists?.(d) ?? true),
    getSourceFile(f, lang) {
      if (inVirtual(f)) {
        const text = dts.get(resolve(f));
        return text === undefined ? undefined : ts.createSourceFile(f, text, lang, true);
      }
      if (!cache.has(f)) cache.set(f, host.getSourceFile(f, lang));
      return cache.get(f);
    },
  };
}

const printer = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed, removeComments: true });

/** The top-level statement that declares `decl` (a variable's statement, a class, …). */
function statementOf(decl: ts.Node): ts.Statement {
  let n = decl;
  while (!ts.isSourceFile(n.parent)) n = n.parent;
  return n as ts.Statement;
}

function tagsOf(decl: ts.Declaration): string {
  const names = new Set(ts.getJSDocTags(decl).map((t) => t.tagName.text));
  return ['deprecated', 'internal']
    .filter((t) => names.has(t))
    .map((t) => `/** @${t} */\n`)
    .join('');
}

/**
 * Union members and the properties of object literal types in a canonical order: TypeScript writes inferred types in
 * the order it happened to create them, which moves when unrelated files change.
 */
const canonical: ts.TransformerFactory<ts.Node> = (context) => {
  const { factory } = context;
  const key = (n: ts.Node, file: ts.SourceFile) => printer.printNode(ts.EmitHint.Unspecified, n, file);
  const visit = (node: ts.Node): ts.Node => {
    const n = ts.visitEachChild(node, visit, context);
    const file = node.getSourceFile();
    if (ts.isUnionTypeNode(n)) {
      return factory.updateUnionTypeNode(
        n,
        factory.createNodeArray([...n.types].sort((a, b) => cmp(key(a, file), key(b, file)))),
      );
    }
    if (ts.isTypeLiteralNode(n) && n.members.every(ts.isPropertySignature)) {
      const name = (m: ts.TypeElement) => key(m.name!, file);
      return factory.updateTypeLiteralNode(
        n,
        factory.createNodeArray([...n.members].sort((a, b) => cmp(name(a), name(b)))),
      );
    }
    return n;
  };
  return visit;
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Print a declaration: canonical order, 2-space indentation, `import("…")` paths relative to the repository. */
function print(stmt: ts.Statement): string {
  const file = stmt.getSourceFile();
  const [node] = ts.transform<ts.Node>(stmt, [canonical]).transformed;
  const text = printer.printNode(ts.EmitHint.Unspecified, node!, file);
  const fromDir = dirname(file.fileName);
  return text
    .replace(/import\("(\.{1,2}\/[^"]*)"\)/g, (_, p: string) => {
      const target = relative(virtualDir, resolve(fromDir, p)).replace(/\.js$/, '.ts');
      return `import("${target.split('\\').join('/')}")`;
    })
    .split('\n')
    .map((line) => line.replace(/^( {4})+/, (m) => ' '.repeat(m.length / 2)))
    .join('\n');
}

/** Identifiers in type positions of a declaration: what it refers to. */
function referencedNames(node: ts.Node, out: ts.Node[] = []): ts.Node[] {
  const leftmost = (n: ts.EntityName | ts.Expression): ts.Node =>
    ts.isQualifiedName(n) ? leftmost(n.left) : ts.isPropertyAccessExpression(n) ? leftmost(n.expression) : n;
  if (ts.isTypeReferenceNode(node)) out.push(leftmost(node.typeName));
  else if (ts.isExpressionWithTypeArguments(node)) out.push(leftmost(node.expression));
  else if (ts.isTypeQueryNode(node)) out.push(leftmost(node.exprName));
  else if (ts.isImportTypeNode(node) && node.qualifier) {
    let q: ts.EntityName = node.qualifier;
    while (ts.isQualifiedName(q)) q = q.left;
    out.push(q);
  }
  ts.forEachChild(node, (c) => void referencedNames(c, out));
  return out;
}

/** Generate the report: file name under api/ → content. */
export function generateApiReport(): Map<string, string> {
  const list = entries();
  const options = compilerOptions();
  const dts = new Map<string, string>();
  const host = cachingHost(options, dts);
  for (const [k, v] of emitDeclarations(
    list.map((e) => e.source),
    host,
    options,
  ))
    dts.set(k, v);
  const virtualOf = (src: string) => join(virtualDir, relative(root, src)).replace(/\.ts$/, '.d.ts');
  const program = ts.createProgram(
    list.map((e) => virtualOf(e.source)),
    { ...options, noEmit: true },
    host,
  );
  const checker = program.getTypeChecker();
  const resolveAlias = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const typeOnly = (s: ts.Symbol): boolean => {
    for (
      let a: ts.Symbol | undefined = s;
      a && a.flags & ts.SymbolFlags.Alias;
      a = checker.getImmediateAliasedSymbol(a)
    ) {
      const d = a.declarations?.[0];
      if (d && ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly)) return true;
    }
    return false;
  };
  const exportsOf = list.map((e) => {
    const file = program.getSourceFile(virtualOf(e.source));
    const mod = file && checker.getSymbolAtLocation(file);
    if (!mod) throw new Error(`No declarations for ${e.specifier} (${relative(root, e.source)})`);
    return checker
      .getExportsOfModule(mod)
      .map((s) => ({ name: s.name, symbol: resolveAlias(s), typeOnly: typeOnly(s) }));
  });
  /** Which entry point (first in package.json order) exports a symbol, and under which name. */
  const owner = new Map<ts.Symbol, { specifier: string; name: string }>();
  list.forEach((e, i) => {
    for (const x of exportsOf[i]!)
      if (!owner.has(x.symbol)) owner.set(x.symbol, { specifier: e.specifier, name: x.name });
  });

  const report = new Map<string, string>();
  list.forEach((entry, i) => {
    const own = new Set(exportsOf[i]!.map((x) => x.symbol));
    const imports = new Map<string, Set<string>>();
    const forgotten = new Map<ts.Symbol, string>();
    const queue: ts.Symbol[] = [];
    const declare = (symbol: ts.Symbol): string[] =>
      (symbol.declarations ?? [])
        .filter((d) => resolve(d.getSourceFile().fileName).startsWith(virtualDir))
        .map((d) => {
          for (const ref of referencedNames(statementOf(d))) {
            const s = checker.getSymbolAtLocation(ref);
            if (!s) continue;
            const target = resolveAlias(s);
            const decl = target.declarations?.[0];
            if (!decl || target.flags & ts.SymbolFlags.TypeParameter || own.has(target) || forgotten.has(target))
              continue;
            if (
              !resolve(decl.getSourceFile().fileName).startsWith(virtualDir) ||
              !ts.isSourceFile(statementOf(decl).parent)
            )
              continue;
            const from = owner.get(target);
            if (from) {
              if (!imports.has(from.specifier)) imports.set(from.specifier, new Set());
              imports.get(from.specifier)!.add(from.name);
            } else {
              forgotten.set(target, target.name);
              queue.push(target);
            }
          }
          return tagsOf(d) + print(statementOf(d));
        })
        .filter((text, j, all) => all.indexOf(text) === j);
    const blocks = [...exportsOf[i]!]
      .sort((a, b) => cmp(a.name, b.name))
      .map((x) => {
        const texts = declare(x.symbol);
        const declared = x.symbol.name;
        const note = [
          x.typeOnly && x.symbol.flags & ts.SymbolFlags.Value ? `// exported as a type only: ${x.name}` : '',
          declared !== x.name && declared !== 'default' ? `// exported as ${x.name}` : '',
        ].filter(Boolean);
        return [...note, ...texts].join('\n');
      });
    const extra: string[] = [];
    for (let s = queue.shift(); s; s = queue.shift()) extra.push(declare(s).join('\n'));
    extra.sort();
    const importLines = [...imports]
      .sort(([a], [b]) => cmp(a, b))
      .map(([spec, names]) => `import type { ${[...names].sort().join(', ')} } from '${spec}';`);
    const body = [
      ...(importLines.length ? [importLines.join('\n')] : []),
      ...blocks,
      ...(extra.length ? ['// Referenced above, exported by no entry point:', ...extra] : []),
    ].join('\n\n');
    report.set(
      entry.file,
      formatted(
        entry.file,
        `# API report: \`${entry.specifier}\`\n\n` +
          'Generated from the emitted declarations by `npm run api:update` (scripts/api-report.ts); do not edit. ' +
          '`npm test` fails while the public API and this file differ.\n\n' +
          `\`\`\`ts\n${body}\n\`\`\`\n`,
      ),
    );
  });
  return report;
}

/** The text as `biome format` leaves it (the report is checked by `biome ci` like every file). */
function formatted(file: string, text: string): string {
  const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome');
  return execFileSync(process.execPath, [biome, 'format', `--stdin-file-path=${join('api', file)}`], {
    cwd: root,
    input: text,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** The checked-in report: file name under api/ → content. */
export function readApiReport(): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(apiDir)) return out;
  for (const f of readdirSync(apiDir).sort())
    if (f.endsWith('.api.md')) out.set(f, readFileSync(join(apiDir, f), 'utf8'));
  return out;
}

/** Rewrite api/ from the source. */
export function writeApiReport(report = generateApiReport()): void {
  rmSync(apiDir, { recursive: true, force: true });
  mkdirSync(apiDir, { recursive: true });
  for (const [f, text] of report) writeFileSync(join(apiDir, f), text);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const started = Date.now();
  writeApiReport();
  console.log(`api/ rewritten in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
