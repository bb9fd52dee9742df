import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Replace the section between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->` in
 * docs/performance.md (appending it when missing). Each benchmark owns one section. The file is then formatted with
 * the project's Biome settings, so `npm test` (which runs `biome ci`) stays green after a benchmark run.
 */
export function writePerformanceSection(name: string, markdown: string, file = 'docs/performance.md'): void {
  let doc = '';
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc =
      '# Performance\n\nFigures measured on this machine by `npm run bench -- <name>`; every figure is a ratio against a baseline run in the same process.\n';
  }
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, doc);
  try {
    execFileSync('npx', ['biome', 'format', '--write', file], { stdio: 'ignore' });
  } catch (err) {
    console.warn(`could not format ${file} with biome: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Median and spread of repeated figures. */
export function stats(xs: number[]): { median: number; min: number; max: number } {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return { median: v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2, min: v[0], max: v[v.length - 1] };
}

/** `median (min–max)` of repeated figures, each written by `f` (the median alone for one figure). */
export function spread(xs: number[], f: (x: number) => string): string {
  const s = stats(xs);
  return xs.length > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}
