import type { IngestionEvent, Logger } from '../contracts/context.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { redact, redactDeep } from '../errors/redact.js';
import type { RunUnitResult } from '../pipeline/options.js';
import { newRunProgress } from '../telemetry/progress.js';
import { formatBytes, formatDuration, formatInt, renderTable, truncate } from './format.js';
import { ProgressLine, type ProgressState, type TtyLike } from './progress.js';

/** Outcome of one unit, for the summary. @internal */
export interface UnitOutcome {
  unitId: string;
  status: 'ok' | 'failed' | 'aborted';
  /** Run id (also of a failed run, which the next run resumes). */
  runId?: string;
  result?: RunUnitResult;
  error?: { code: string; message: string; retryable: boolean };
  durationMs: number;
}

/**
 * Where a command's output goes: a live progress line and a summary on a terminal, JSON lines otherwise.
 * @internal
 */
export interface Reporter {
  readonly logger: Logger;
  unitStarted(unitId: string): void;
  event(e: IngestionEvent): void;
  unitFinished(outcome: UnitOutcome): void;
  /** Print the summary (TTY) or a final `cli.summary` line (JSON). */
  finish(outcomes: UnitOutcome[]): void;
  /** A one-off JSON document (templates, status, preview, sweep). */
  document(type: string, body: Record<string, unknown>): void;
  /** An error outside any unit (usage, config). */
  error(err: unknown): void;
}

/** Serialize a failure without secrets. */
export function describeError(err: unknown): { code: string; message: string; retryable: boolean } {
  if (IngestError.is(err)) return { code: err.code, message: err.message, retryable: err.retryable };
  return { code: 'internal', message: redact(err instanceof Error ? err.message : String(err)), retryable: false };
}

function line(out: TtyLike, value: unknown): void {
  out.write(`${JSON.stringify(redactDeep(value))}\n`);
}

/**
 * JSON lines on stdout: every pipeline event as is, `log` lines, `unit.finished` per unit and a final `cli.summary`.
 * @internal
 */
export class JsonLinesReporter implements Reporter {
  readonly logger: Logger;

  constructor(
    private readonly out: TtyLike,
    verbose = false,
  ) {
    const log = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
      if (level === 'debug' && !verbose) return;
      line(this.out, { type: 'log', at: new Date().toISOString(), level, message: redact(message), ...(fields ?? {}) });
    };
    this.logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  }

  unitStarted(): void {}

  event(e: IngestionEvent): void {
    line(this.out, e);
  }

  unitFinished(o: UnitOutcome): void {
    line(this.out, {
      type: 'unit.finished',
      at: new Date().toISOString(),
      unitId: o.unitId,
      status: o.status,
      durationMs: o.durationMs,
      ...(o.runId ? { runId: o.runId } : {}),
      ...(o.result ? { runId: o.result.runId, stats: o.result.stats, newCheckpoint: o.result.newCheckpoint } : {}),
      ...(o.error ? { error: o.error } : {}),
    });
  }

  finish(outcomes: UnitOutcome[]): void {
    line(this.out, {
      type: 'cli.summary',
      at: new Date().toISOString(),
      ok: outcomes.every((o) => o.status === 'ok'),
      units: outcomes.map((o) => ({
        unitId: o.unitId,
        status: o.status,
        rowsImported: o.result?.stats.rowsImported ?? 0,
      })),
    });
  }

  document(type: string, body: Record<string, unknown>): void {
    line(this.out, { type, ...body });
  }

  error(err: unknown): void {
    line(this.out, { type: 'cli.error', at: new Date().toISOString(), error: describeError(err) });
  }
}

/**
 * A terminal: one live progress line per running unit, redrawn in place, and a summary table at the end.
 * Logs (warnings and errors; everything with `--verbose`) go to stderr above the progress line.
 * @internal
 */
export class TtyReporter implements Reporter {
  readonly logger: Logger;
  private progress: ProgressLine | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly out: TtyLike,
    private readonly err: TtyLike,
    private readonly verbose = false,
  ) {
    const log = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
      if ((level === 'debug' || level === 'info') && !this.verbose) return;
      this.progress?.clear();
      const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(redactDeep(fields))}` : '';
      this.err.write(`${level.toUpperCase().padEnd(5)} ${redact(message)}${extra}\n`);
      this.progress?.draw(true);
    };
    this.logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  }

  unitStarted(unitId: string): void {
    const now = Date.now();
    const state: ProgressState = {
      ...newRunProgress(),
      unitId,
      startedAt: now,
      phaseStartedAt: now,
    };
    this.progress = new ProgressLine(this.out, state);
    this.progress.draw(true);
    this.ticker = setInterval(() => this.progress?.draw(), 250);
    this.ticker.unref?.();
  }

  event(e: IngestionEvent): void {
    this.progress?.onEvent(e);
  }

  unitFinished(o: UnitOutcome): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.progress) {
      this.progress.draw(true);
      this.out.write('\n');
    }
    this.progress = undefined;
    if (o.error)
      this.err.write(
        `${o.status === 'aborted' ? 'ABORTED' : 'FAILED'} ${o.unitId}: [${o.error.code}] ${o.error.message}\n`,
      );
  }

  finish(outcomes: UnitOutcome[]): void {
    const rows = outcomes.map((o) => {
      const s = o.result?.stats;
      const rate = s && o.durationMs > 0 ? (s.rowsImported * 1000) / o.durationMs : 0;
      return [
        o.unitId,
        o.status === 'ok' ? (o.result?.resumed ? 'ok (resumed)' : 'ok') : `${o.status} (${o.error?.code ?? '?'})`,
        s ? formatInt(s.rowsExported) : '-',
        s ? formatInt(s.rowsImported) : '-',
        s ? String(s.slices) : '-',
        s ? formatBytes(s.bytesStaged) : '-',
        formatDuration(o.durationMs),
        s ? formatInt(rate) : '-',
        o.result ? truncate(JSON.stringify(redactDeep(o.result.newCheckpoint as Json)), 40) : '-',
      ];
    });
    const table = renderTable(
      ['unit', 'status', 'exported', 'imported', 'slices', 'staged', 'time', 'rows/s', 'checkpoint'],
      rows,
      new Set([2, 3, 4, 5, 6, 7]),
    );
    this.out.write(`\n${table}\n`);
  }

  document(type: string, body: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(redactDeep({ type, ...body }), null, 2)}\n`);
  }

  error(err: unknown): void {
    const e = describeError(err);
    this.err.write(`error [${e.code}]: ${e.message}\n`);
  }
}
