import type { IngestionEvent } from '../contracts/context.js';
import { applyProgressEvent, type RunProgress } from '../telemetry/progress.js';
import { formatDuration, formatInt, truncate } from './format.js';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const BAR_WIDTH = 24;

/** Counters of one unit's run, folded from pipeline events, with the clocks of the progress line. @internal */
export interface ProgressState extends RunProgress {
  unitId: string;
  startedAt: number;
  /** When the current phase (export or import) began, for rows/s. */
  phaseStartedAt: number;
}

/** Fold one event into the state; restarts the rate clock when the export or import begins. @internal */
export function applyEvent(s: ProgressState, e: IngestionEvent, now: number): void {
  if (applyProgressEvent(s, e) && (s.phase === 'exporting' || s.phase === 'importing')) s.phaseStartedAt = now;
}

/**
 * One progress line: spinner, unit, phase, a bar with percent and ETA when the total is known, rows, rows/s, slices.
 * @internal
 */
export function progressLine(s: ProgressState, now: number, tick: number, columns: number): string {
  const importing = s.phase === 'importing' || s.phase === 'imported' || s.phase === 'committed';
  const done = importing ? s.rowsImported : s.rowsExported;
  const total = importing ? s.rowsTotal : s.estimatedRows;
  const elapsed = Math.max(1, now - s.phaseStartedAt);
  const rate = (done * 1000) / elapsed;
  const parts = [SPINNER[tick % SPINNER.length], s.unitId, s.phase.padEnd(9)];
  if (total !== undefined && total > 0) {
    const ratio = Math.min(1, done / total);
    const filled = Math.round(ratio * BAR_WIDTH);
    parts.push(
      `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}]`,
      `${String(Math.floor(ratio * 100)).padStart(3)}%`,
    );
  }
  parts.push(`${formatInt(done)} rows`, `${formatInt(rate)} rows/s`);
  parts.push(`slices ${s.slicesStaged}${s.slicesPlanned !== undefined ? `/${s.slicesPlanned}` : ''}`);
  if (total !== undefined && total > done && rate > 0)
    parts.push(`ETA ${formatDuration(((total - done) / rate) * 1000)}`);
  parts.push(formatDuration(now - s.startedAt));
  return truncate(parts.join('  '), Math.max(20, columns - 1));
}

/** What the progress renderer writes to. @internal */
export interface TtyLike {
  write(text: string): unknown;
  columns?: number;
}

/**
 * Redraws one progress line in place (`\r` + clear line), at most every `intervalMs`.
 * @internal
 */
export class ProgressLine {
  private lastDraw = Number.NEGATIVE_INFINITY;
  private tick = 0;
  private visible = false;

  constructor(
    private readonly out: TtyLike,
    private readonly state: ProgressState,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  onEvent(e: IngestionEvent): void {
    const before = this.state.phase;
    applyEvent(this.state, e, this.now());
    this.draw(this.state.phase !== before);
  }

  /** Redraw if the interval passed (or `force`). */
  draw(force = false): void {
    const t = this.now();
    if (!force && t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    this.out.write(`\r\x1b[2K${progressLine(this.state, t, this.tick++, this.out.columns ? this.out.columns : 120)}`);
    this.visible = true;
  }

  /** Erase the line (before printing something else). */
  clear(): void {
    if (this.visible) this.out.write('\r\x1b[2K');
    this.visible = false;
  }
}
