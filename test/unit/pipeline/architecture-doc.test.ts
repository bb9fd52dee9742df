import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type PhaseRule, RUN_PHASES } from '../../../src/pipeline/run-policy.js';

const doc = readFileSync(new URL('../../../docs/architecture.md', import.meta.url), 'utf8');

/** A cell: `—` is null (nothing to decide). */
const cell = (c: string) => (c === '—' ? null : c);

/** The phase table of a document: the Markdown table whose header starts with `| phase |`, read as `RUN_PHASES`. */
function rulesOf(markdown: string): Record<string, PhaseRule> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^\|\s*phase\s*\|/.test(l));
  expect(start, 'docs/architecture.md has a table starting with "| phase |"').toBeGreaterThanOrEqual(0);
  const rules: Record<string, PhaseRule> = {};
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim().replaceAll('`', ''));
    const [phase, pending, step, next, moved, staging, mode, gone, inSink] = cells;
    rules[phase] = {
      pending: pending === 'yes',
      step: cell(step),
      next: next === '—' ? [] : next.split(',').map((p) => p.trim()),
      checkpointMoved: cell(moved),
      stagingChanged: cell(staging),
      modeChanged: cell(mode),
      sessionGone: cell(gone),
      inSink,
    } as PhaseRule;
  }
  return rules;
}

describe('docs/architecture.md', () => {
  it('shows the phase table and resume policy of the code (RUN_PHASES)', () => {
    expect(rulesOf(doc)).toEqual(RUN_PHASES);
  });

  it('is caught when it disagrees', () => {
    const edited = doc.replace(/^(\| `imported` .*?)`committed`/m, '$1`abandoned`');
    expect(edited).not.toBe(doc);
    expect(rulesOf(edited)).not.toEqual(RUN_PHASES);
  });
});
