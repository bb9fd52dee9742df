import { IngestError } from '../errors/ingest-error.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parse a duration such as `7d`, `12h`, `30m`, `45s`, `500ms` or `1h30m` into milliseconds.
 * @throws IngestError `config_invalid` for anything else
 * @internal
 */
export function parseDuration(text: string, name: string): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(trimmed)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    matched = re.lastIndex;
  }
  if (trimmed.length === 0 || matched !== trimmed.length) {
    throw new IngestError(
      'config_invalid',
      `Expected \`${name}\` to be a duration like 7d, 12h, 30m or 500ms, got "${text}"`,
    );
  }
  return Math.round(total);
}
