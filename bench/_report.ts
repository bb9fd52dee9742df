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
