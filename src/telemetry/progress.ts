import type { IngestionEvent, RunPhase } from '../contracts/context.js';

/**
 * Where a run stands, folded from its {@link IngestionEvent}s: what a progress bar or a Temporal heartbeat shows.
 * @public
 */
export interface RunProgress {
  runId: string;
  /** Phase in the run state's vocabulary; `starting` until the first phase event. */
  phase: RunPhase | 'starting';
  /** Slice most recently reported. */
  slice?: number;
  rowsExported: number;
  rowsImported: number;
  slicesStaged: number;
  slicesPlanned?: number;
  /** Rows of the staged session, known once the import starts. */
  rowsTotal?: number;
  /** The planner's estimate of the rows to export. */
  estimatedRows?: number;
}

/** A fresh progress record. @internal */
export function newRunProgress(runId = ''): RunProgress {
  return { runId, phase: 'starting', rowsExported: 0, rowsImported: 0, slicesStaged: 0 };
}

/**
 * Fold one event into `p` (in place). Returns `true` when the phase changed.
 * @internal
 */
export function applyProgressEvent(p: RunProgress, e: IngestionEvent): boolean {
  const before = p.phase;
  if (e.runId) p.runId = e.runId;
  switch (e.type) {
    case 'run.started':
      if (e.estimatedRows !== undefined) p.estimatedRows = e.estimatedRows;
      break;
    case 'run.resumed':
      p.phase = e.phase;
      p.slicesStaged = Math.max(p.slicesStaged, e.slicesKept);
      break;
    case 'export.progress':
    case 'slice.staged':
      p.phase = 'exporting';
      p.slice = e.slice;
      p.rowsExported = e.rowsExported;
      p.slicesStaged = e.slicesStaged;
      if (e.slicesPlanned !== undefined) p.slicesPlanned = e.slicesPlanned;
      if (e.type === 'export.progress' && e.estimatedRows !== undefined) p.estimatedRows = e.estimatedRows;
      break;
    case 'export.completed':
      p.phase = 'exported';
      p.rowsExported = e.rowsExported;
      p.slicesStaged = e.slices;
      break;
    case 'import.progress':
      p.phase = 'importing';
      p.rowsImported = e.rowsImported;
      p.rowsTotal = e.rowsTotal;
      if (e.slice !== undefined) p.slice = e.slice;
      break;
    case 'checkpoint.committed':
      p.phase = 'committed';
      break;
    case 'run.completed':
      p.phase = 'committed';
      p.rowsExported = e.stats.rowsExported;
      p.rowsImported = e.stats.rowsImported;
      p.slicesStaged = e.stats.slices;
      break;
    default:
      break;
  }
  return p.phase !== before;
}
