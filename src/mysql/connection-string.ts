/*
 * Checks of a MySQL connection string without loading mysql2 (the CLI validates a pipeline file's `kv` with it before
 * any optional dependency is imported).
 */

const QUERY_PARAMS = new Set(['ssl', 'connectTimeout', 'charset']);

/** What is wrong with a connection string (empty when nothing). Never quotes the password. @internal */
export function mySqlConnectionStringIssues(text: string): string[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return ['expected mysql://user:password@host:port/database'];
  }
  const issues: string[] = [];
  if (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:')
    issues.push(`expected the scheme mysql:// or mariadb://, got ${JSON.stringify(url.protocol.replace(/:$/, ''))}`);
  if (!url.hostname) issues.push('expected a host');
  if (url.port && !/^\d+$/.test(url.port)) issues.push('expected a numeric port');
  const path = url.pathname.replace(/^\//, '');
  if (path.includes('/')) issues.push('expected at most one path segment (the database)');
  for (const [k, v] of url.searchParams) {
    if (!QUERY_PARAMS.has(k))
      issues.push(`unknown parameter ${JSON.stringify(k)} (known: ${[...QUERY_PARAMS].join(', ')})`);
    if (k === 'ssl' && !['true', 'required', 'insecure', 'false'].includes(v))
      issues.push('expected ssl=true|required|insecure|false');
    if (k === 'connectTimeout' && !/^\d+$/.test(v)) issues.push('expected connectTimeout in milliseconds');
  }
  return issues;
}
