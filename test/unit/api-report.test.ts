import { describe, expect, it } from 'vitest';
import { generateApiReport, readApiReport } from '../../scripts/api-report.js';

const FIX = 'the public API changed: run `npm run api:update` and commit api/ with the change';

describe('API report (api/*.api.md)', () => {
  // Type-checks src to emit its declarations: ~20 s of CPU, more on a loaded machine.
  it('matches the declarations the entry points export', { timeout: 300_000 }, () => {
    const actual = generateApiReport();
    const stored = readApiReport();
    // Expected: the checked-in report; received (+): what the source declares now.
    expect([...actual.keys()].sort(), `${FIX} (entry points)`).toEqual([...stored.keys()].sort());
    for (const [file, text] of actual) expect(text, `${FIX} (api/${file})`).toBe(stored.get(file));
  });
});
