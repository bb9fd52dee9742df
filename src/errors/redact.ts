/**
 * Secret scrubbing.
 *
 * Two levels. Free text that may come from a driver or a server (error messages, log messages):
 * {@link redact} masks credentials in URLs, `password=…`/`token=…`/`secret=…` pairs, `Authorization`/`Bearer` values
 * and registered secrets. Data (events, checkpoints, previews, JSON Schemas, details): {@link redactDeep} masks only
 * secrets — values registered with {@link registerSecret} (connection string passwords, tokens, config fields declared
 * secret, `${env:…}` values) and URL passwords — never a value because of its key's name.
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

/**
 * Mask what is a secret in a data string: registered secrets ({@link registerSecret}: passwords of connection
 * strings, tokens, config fields declared secret, `${env:…}` values) and the password of a URL
 * (`scheme://user:***@host`). Nothing else: `token_count=3` or `{"nextToken":"page-2"}` is data and stays.
 * @public
 */
export function redactSecrets(text: string): string {
  let out = text.replace(URL_CREDENTIALS, (_m, scheme: string, user: string, pass?: string) =>
    pass === undefined ? `${scheme}${user}@` : `${scheme}${user}:***@`,
  );
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

/**
 * Deep-copy plain data (events, checkpoints, previews, details) with secrets masked in every string by
 * {@link redactSecrets}. Keys are data: a field named `passed`, `token_count` or `nextToken` keeps its value; only
 * values that are secrets are masked.
 * @public
 */
export function redactDeep<T>(value: T, depth = 0): T {
  if (depth > 32) return value;
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: redactDeep(v, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out as T;
  }
  return value;
}
