import { IngestError } from '../errors/ingest-error.js';

const encoder = new TextEncoder();

/**
 * Throws `invalid_key` unless `key` is a portable object key: relative, `/`-separated, 1–1024 bytes of UTF-8,
 * no empty, `.` or `..` segment, no leading `/`, no backslash, no control character (incl. NUL).
 * Every ObjectStore calls it before any I/O.
 * @public
 */
export function assertValidObjectKey(key: unknown, what = 'key'): asserts key is string {
  const problem = objectKeyProblem(key);
  if (problem) {
    const shown =
      typeof key === 'string' ? JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key) : typeof key;
    throw new IngestError('invalid_key', `Invalid object ${what} ${shown}: ${problem}`, { details: { problem } });
  }
}

/** The reason `key` is not a portable object key, or `undefined` when it is. @public */
export function objectKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'must be a string';
  if (key.length === 0) return 'must not be empty';
  if (key.startsWith('/')) return 'must be relative (no leading "/")';
  if (key.includes('\\')) return 'must not contain a backslash';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'must not contain control characters';
  if (!isWellFormed(key)) return 'must be valid UTF-8 (no lone surrogates)';
  if (encoder.encode(key).byteLength > 1024) return 'must be at most 1024 bytes of UTF-8';
  for (const segment of key.split('/')) {
    if (segment === '') return 'must not contain an empty segment ("//" or a trailing "/")';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
  }
  return undefined;
}

/**
 * Like {@link assertValidObjectKey} for list prefixes: the empty prefix and a trailing `/` are allowed.
 * @public
 */
export function assertValidObjectPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  if (typeof prefix === 'string' && prefix.endsWith('/')) {
    assertValidObjectKey(prefix.slice(0, -1), 'prefix');
    return;
  }
  assertValidObjectKey(prefix, 'prefix');
}

function isWellFormed(s: string): boolean {
  const f = (s as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  if (f) return f.call(s);
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}
