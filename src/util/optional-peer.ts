import { IngestError } from '../errors/ingest-error.js';

/**
 * `loader()` — typically `() => import('../parquet/index.js')`, a module that imports the optional peer `name` —
 * with a missing `name` reported as `dependency_missing` (not retryable) naming the package and its install command.
 * Other failures, and a missing module other than `name`, are rethrown unchanged.
 *
 * @example
 * ```ts
 * const { encodeParquet } = await loadOptionalPeer('hyparquet-writer', () => import('../parquet/index.js'));
 * ```
 * @throws IngestError `dependency_missing` when the package `name` cannot be found.
 * @internal
 */
export async function loadOptionalPeer<T>(name: string, loader: () => Promise<T>, usedFor?: string): Promise<T> {
  try {
    return await loader();
  } catch (err) {
    if (!isMissingPackage(err, name)) throw err;
    const install = `npm install ${name}`;
    const what = usedFor ? `${usedFor} needs` : 'This feature needs';
    throw new IngestError(
      'dependency_missing',
      `${what} the optional package "${name}", which is not installed: run \`${install}\``,
      { cause: err, details: { package: name, install } },
    );
  }
}

/** Whether `err` is Node's "cannot find" error for the package `name` (ESM or CommonJS, the package or a subpath). */
function isMissingPackage(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return false;
  const message = typeof e.message === 'string' ? e.message : '';
  return message.includes(`'${name}'`) || message.includes(`'${name}/`);
}
