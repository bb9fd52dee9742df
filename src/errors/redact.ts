/**
 * Secret scrubbing for messages, log fields and error details.
 *
 * Credentials in URLs (`postgres://user:pass@host`), `password=…`/`token=…`/`secret=…` pairs, AWS secret
 * keys and `Authorization`/`Bearer` values are replaced with `***`. Secrets registered with
 * {@link registerSecret} (e.g. a token read from an environment variable) are replaced wherever they appear.
 */

const registered = new Set<string>();

/**
 * Register a secret value so every message, detail and event scrubbed by the library hides it.
 * Values shorter than 4 characters are ignored (they would mask ordinary text).
 * @public
 */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) registered.add(value);
}

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*)(?::([^\s@]*))?@/gi;
const KEY_VALUE =
  /([A-Za-z0-9_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|authorization)[A-Za-z0-9_-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,'"}]+)/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g;

/**
 * Replace anything that looks like a credential in `text` with `***`.
 * @public
 */
export function redact(text: string): string {
  let out = text.replace(URL_CREDENTIALS, (_m, scheme: string, user: string, pass?: string) =>
    pass === undefined ? `${scheme}${user}@` : `${scheme}${user}:***@`,
  );
  out = out.replace(BEARER, (_m, kind: string) => `${kind} ***`);
  out = out.replace(KEY_VALUE, (_m, k: string, sep: string) => `${k}${sep}***`);
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

const SECRET_FIELD = /pass(word)?|secret|token|credential|authorization|api[_-]?key|connectionstring/i;

/**
 * Deep-copy plain data with secret-looking fields masked and strings scrubbed by {@link redact}.
 * @public
 */
export function redactDeep<T>(value: T, depth = 0): T {
  if (depth > 8) return value;
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: SECRET_FIELD.test(k) && v != null ? '***' : redactDeep(v, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out as T;
  }
  return value;
}
