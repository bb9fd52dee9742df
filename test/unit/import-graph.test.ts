import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The import graph of src: no file may reach itself through its imports (`import type` and `import('…')` count), and
// no connector depends on the pipeline that drives it.

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

/** Connector folders: they plug into the pipeline through the contracts and never import from `src/pipeline`. */
const CONNECTORS = [
  'postgres',
  'mysql',
  'http',
  'sinks',
  'fs',
  's3',
  'arrow',
  'parquet',
  'memory',
  'staging',
  'codecs',
  'sql',
  'nats',
];

/** Every `src/**\/*.ts` file (paths relative to the repository) with the src files it imports. */
function importGraph(): { graph: Map<string, string[]>; unresolved: string[] } {
  const files = (readdirSync(src, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(src, f));
  const graph = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of files) {
    const from = relative(root, file);
    const edges = new Set<string>();
    // static imports and exports (type-only included), side-effect imports, import('…') and import types
    for (const { fileName } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolveTs(resolve(dirname(file), fileName));
      if (target) edges.add(relative(root, target));
      else unresolved.push(`${from} → ${fileName}`);
    }
    graph.set(from, [...edges].sort());
  }
  return { graph, unresolved };
}

function resolveTs(path: string): string | undefined {
  const candidates = [path.replace(/\.js$/, '.ts'), `${path}.ts`, join(path, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c));
}

/** Strongly connected components of more than one file, or of a file importing itself (Tarjan). */
function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.includes(v)) cycles.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One shortest path of imports from `start` back to itself inside its component, for the failure message. */
function cyclePath(graph: ReadonlyMap<string, readonly string[]>, scc: readonly string[]): string {
  const inside = new Set(scc);
  const start = scc[0]!;
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const w of graph.get(queue[i]!) ?? []) {
      if (!inside.has(w) || parent.has(w)) continue;
      parent.set(w, queue[i]!);
      if (w === start) {
        const path = [start];
        for (let at = parent.get(start)!; at !== start; at = parent.get(at)!) path.unshift(at);
        return [start, ...path].join(' → ');
      }
      queue.push(w);
    }
  }
  return start;
}

describe('import graph of src', () => {
  const { graph, unresolved } = importGraph();

  it('reads every relative import of every file', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(unresolved).toEqual([]);
  });

  it('has no import circles', () => {
    const found = importCycles(graph).map((scc) => `${scc.join(', ')} (e.g. ${cyclePath(graph, scc)})`);
    expect(found).toEqual([]);
  });

  it('no connector imports from src/pipeline', () => {
    const offending = [...graph].flatMap(([from, to]) =>
      CONNECTORS.some((c) => from.startsWith(`src/${c}/`))
        ? to.filter((t) => t.startsWith('src/pipeline/')).map((t) => `${from} → ${t}`)
        : [],
    );
    expect(offending).toEqual([]);
  });

  it('finds circles of any length, self-imports and type-only imports', () => {
    const g = new Map<string, string[]>([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(importCycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cyclePath(g, ['a', 'b', 'c'])).toBe('a → b → c → a');
    const typeOnly = ts.preProcessFile("import type { X } from './x.js';\ntype Y = import('./y.js').Y;", true, true);
    expect(typeOnly.importedFiles.map((f) => f.fileName)).toEqual(['./x.js', './y.js']);
  });
});
