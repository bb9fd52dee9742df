import type { IngestionContext, IngestionEvent } from '../contracts/context.js';
import { newRunId } from '../util/ids.js';
import { noopLogger } from '../util/logger.js';

/**
 * An {@link IngestionContext} for calling endpoints and staging directly in tests. Emitted events are collected in `events`.
 * @example
 * ```ts
 * import { testContext } from '@nucleus/ingestion/testing';
 * const ctx = testContext({ unitId: 'users' });
 * ```
 * @public
 */
export function testContext(
  overrides: Partial<IngestionContext> = {},
): IngestionContext & { events: IngestionEvent[] } {
  const events: IngestionEvent[] = [];
  return {
    workspaceId: 'test',
    endpointId: 'test-endpoint',
    unitId: 'test-unit',
    runId: newRunId(),
    vendor: 'test',
    signal: new AbortController().signal,
    logger: noopLogger,
    emit: (e) => events.push(e),
    ...overrides,
    events,
  };
}
