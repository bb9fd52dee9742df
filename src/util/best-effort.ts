import type { Logger } from '../contracts/context.js';

/**
 * The handler of a failure that must not fail the caller — closing a session after the run, a cleanup after an error,
 * a marker write — but must leave a trace: it logs `<what> failed (best effort)` at `warn` with the error, instead of
 * an empty `catch`. Use as `.catch(logFailure(logger, 'closing the session'))`.
 * @internal
 */
export function logFailure(
  logger: Logger | undefined,
  what: string,
  fields: Record<string, unknown> = {},
): (err: unknown) => void {
  return (err) => {
    try {
      logger?.warn(`${what} failed (best effort; continuing)`, { ...fields, error: describe(err) });
    } catch {
      // a logger that throws must not turn a best-effort step into a failure
    }
  };
}

/** Run `fn`; a failure is logged ({@link logFailure}), never thrown. @internal */
export async function bestEffort(
  logger: Logger | undefined,
  what: string,
  fn: () => unknown,
  fields?: Record<string, unknown>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logFailure(logger, what, fields)(err);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
  }
  return String(err);
}
