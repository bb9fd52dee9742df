import type { IngestionContext } from '../contracts/context.js';

const PROGRESS_EVERY_MS = 500;

/**
 * The `import.progress` events of one import, throttled: at most one every 500 ms while rows flow, plus one per
 * committed slice. A throwing listener never fails the import.
 * @internal
 */
export class ImportProgress {
  /** Rows loaded or skipped so far (what the events report). */
  rows = 0;
  /** Rows of committed slices. */
  committedRows = 0;
  #last = 0;

  constructor(
    readonly ctx: IngestionContext,
    readonly total: number,
  ) {}

  /** `n` rows went through `slice`; `done` (a skipped slice) emits at once. */
  add(n: number, slice: number, done = false): void {
    this.rows += n;
    const now = Date.now();
    if (done || now - this.#last >= PROGRESS_EVERY_MS) this.#emit(slice, now);
  }

  /** A transaction holding `rows` rows committed (`slice`: its last slice). */
  commit(rows: number, slice: number): void {
    this.committedRows += rows;
    this.#emit(slice, Date.now());
  }

  #emit(slice: number, now: number): void {
    this.#last = now;
    const c = this.ctx;
    try {
      c.emit?.({
        type: 'import.progress',
        at: new Date(now).toISOString(),
        runId: c.runId,
        workspaceId: c.workspaceId,
        endpointId: c.endpointId,
        unitId: c.unitId,
        ...(c.sinkId !== undefined ? { sinkId: c.sinkId } : {}),
        rowsImported: this.rows,
        rowsTotal: this.total,
        ...(slice >= 0 ? { slice } : {}),
      });
    } catch {
      // a throwing listener must not fail the import
    }
  }
}
