import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../../src/pipeline/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
const source = (f: string) => readFileSync(new URL(f, dir), 'utf8');

/** The files of src/pipeline a file imports or re-exports from, `import type` included. */
function importsOf(file: string): string[] {
  const specs = [...source(file).matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'\.\/([^']+)\.js'/gms)].map((m) => m[1]);
  return [...new Set(specs.map((s) => `${s}.ts`))];
}

/** One circle of imports, if there is any: a depth-first search over the graph. */
function findCircle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (f: string): string[] | undefined => {
    if (state.get(f) === 'done') return undefined;
    if (state.get(f) === 'open') return [...path.slice(path.indexOf(f)), f];
    state.set(f, 'open');
    path.push(f);
    for (const g of graph.get(f) ?? []) {
      const circle = visit(g);
      if (circle) return circle;
    }
    path.pop();
    state.set(f, 'done');
    return undefined;
  };
  for (const f of graph.keys()) {
    const circle = visit(f);
    if (circle) return circle;
  }
  return undefined;
}

describe('src/pipeline imports', () => {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('form no circle (import type included)', () => {
    expect(graph.get('run-unit.ts')).toContain('run-policy.ts');
    expect(findCircle(graph)).toBeUndefined();
  });

  it('finds a circle where there is one', () => {
    expect(
      findCircle(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
    ).toEqual(['a', 'b', 'c', 'a']);
  });

  it('leave the run policy importing nothing at all', () => {
    expect(source('run-policy.ts')).not.toMatch(/^\s*import\b|\bfrom\s+['"]|\brequire\(|\bimport\(/m);
  });
});
