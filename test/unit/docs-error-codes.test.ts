import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/index.js';

const page = readFileSync(new URL('../../docs/error-codes.md', import.meta.url), 'utf8');

/** `## \`code\`` sections of docs/error-codes.md with their "Retryable: yes|no" line. */
function sections(): Map<string, { retryable: boolean | undefined; body: string }> {
  const out = new Map<string, { retryable: boolean | undefined; body: string }>();
  const parts = page.split(/^## /m).slice(1);
  for (const part of parts) {
    const m = /^`([a-z_]+)`\s*\n([\s\S]*)$/.exec(part);
    if (!m) continue;
    const r = /^Retryable: (yes|no)\b/m.exec(m[2]!);
    out.set(m[1]!, { retryable: r ? r[1] === 'yes' : undefined, body: m[2]! });
  }
  return out;
}

describe('docs/error-codes.md', () => {
  it('documents exactly the codes of ERROR_CODES, each with its default retryability, when, and what to do', () => {
    const docs = sections();
    expect([...docs.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      const s = docs.get(code)!;
      expect({ code, retryable: s.retryable }).toEqual({ code, retryable: spec.retryable });
      expect(s.body).toContain('**When:**');
      expect(s.body).toContain('**What to do:**');
    }
  });
});
