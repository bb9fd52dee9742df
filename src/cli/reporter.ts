import type { IngestionEvent, Logger } from '../contracts/context.js';
import type { Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { redact, redactDeep } from '../errors/redact.js';
import type { RunUnitResult } from '../pipeline/options.js';
import { plainJson as toPlainJson } from '../sinks/plain-json.js';
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
 * Where a command's output goes: readable text by default (a live progress line only on a terminal), JSON lines with
 * `--json`. Errors always go to stderr as `error [code]: message`.
 * @internal
 */
export interface Reporter {
  readonly logger: Logger;
  /** True for `--json` (JSON lines on stdout). */
  readonly json: boolean;
  unitStarted(unitId: string): void;
  event(e: IngestionEvent): void;
  unitFinished(outcome: UnitOutcome): void;
  /** Print the summary (TTY) or a final `cli.summary` line (JSON). */
  finish(outcomes: UnitOutcome[]): void;
  /** A one-off document (status, sweep, …): one JSON line with `--json`, `key  value` lines otherwise. */
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

/** The line a failed unit or command prints on stderr: the code, the message and what to do. @internal */
export function errorLine(e: { code: string; message: string; retryable: boolean }, unitId?: string): string {
  const hint =
    e.code === 'config_invalid'
      ? 'fix the pipeline file or the command line'
      : e.code === 'schema_conflict'
        ? 'the source schema changed: ALTER the target or choose a schemaContract (--schema-contract), as the message says'
        : e.code === 'aborted'
          ? 'interrupted; the run stays resumable'
          : e.code === 'dependency_missing'
            ? 'install the package named above, then run again'
            : e.retryable
              ? 'retryable: run the same command again to resume'
              : 'permanent: fix the data, the target or the config first';
  return `error [${e.code}]${unitId ? ` ${unitId}` : ''}: ${e.message} (${hint})\n`;
}

/**
 * `--json`: JSON lines on stdout — every pipeline event as is, `log` lines, `unit.finished` per unit and a final
 * `cli.summary`. Failures are also written to stderr as one readable line each.
 * @internal
 */
export class JsonLinesReporter implements Reporter {
  readonly logger: Logger;
  readonly json = true;

  constructor(
    private readonly out: TtyLike,
    private readonly err: TtyLike,
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
    if (o.error) this.err.write(errorLine(o.error, o.unitId));
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
    const e = describeError(err);
    line(this.out, { type: 'cli.error', at: new Date().toISOString(), error: e });
    this.err.write(errorLine(e));
  }
}

/**
 * Readable text, the default: on a terminal one live progress line per running unit, redrawn in place; piped, one
 * line when a unit starts or resumes instead. A summary table at the end either way. Logs (warnings and errors;
 * everything with `--verbose`) and failures go to stderr.
 * @internal
 */
export class TextReporter implements Reporter {
  readonly logger: Logger;
  readonly json = false;
  private progress: ProgressLine | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly out: TtyLike,
    private readonly err: TtyLike,
    private readonly opts: { verbose?: boolean; progress?: boolean } = {},
  ) {
    const log = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
      if ((level === 'debug' || level === 'info') && !this.opts.verbose) return;
      this.progress?.clear();
      const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(redactDeep(fields))}` : '';
      this.err.write(`${level.toUpperCase().padEnd(5)} ${redact(message)}${extra}\n`);
      this.progress?.draw(true);
    };
    this.logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  }

  unitStarted(unitId: string): void {
    if (!this.opts.progress) return;
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
    if (this.progress) {
      this.progress.onEvent(e);
      return;
    }
    if (e.type === 'run.started') {
      const mode = (e as { mode?: string }).mode;
      this.out.write(`${e.unitId}: run ${e.runId} started${mode ? ` (${mode})` : ''}\n`);
    } else if (e.type === 'run.resumed') {
      const phase = (e as { phase?: string }).phase;
      this.out.write(`${e.unitId}: resuming run ${e.runId}${phase ? ` from ${phase}` : ''}\n`);
    }
  }

  unitFinished(o: UnitOutcome): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.progress) {
      this.progress.draw(true);
      this.out.write('\n');
    }
    this.progress = undefined;
    if (o.error) this.err.write(errorLine(o.error, o.unitId));
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
        o.result ? truncate(JSON.stringify(redactDeep(toPlainJson(o.result.newCheckpoint as Value))), 40) : '-',
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
    const entries = Object.entries(redactDeep(body));
    const width = Math.max(0, ...entries.map(([k]) => k.length));
    const text = entries
      .map(([k, v]) => `${k.padEnd(width)}  ${typeof v === 'string' ? v : JSON.stringify(toPlainJson(v as Value))}`)
      .join('\n');
    this.out.write(`${type}\n${text}\n`);
  }

  error(err: unknown): void {
    this.progress?.clear();
    this.err.write(errorLine(describeError(err)));
  }
}
