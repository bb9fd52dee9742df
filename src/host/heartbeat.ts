import type { IngestionEvent } from '../contracts/context.js';
import { applyProgressEvent, newRunProgress, type RunProgress } from '../telemetry/progress.js';

/**
 * What a host reports while a unit runs: the details of every Temporal heartbeat, the progress of a BullMQ job.
 *
 * Details are a progress report and a hint for humans (Temporal UI, `describe`, dashboards), never the truth: a
 * retried activity or job resumes from the run state in the KvStore, so stale or missing details give the same result.
 * @public
 */
export interface IngestionHeartbeatDetails extends RunProgress {
  /** Attempt (Temporal activity or BullMQ job, from 1) that sent this heartbeat. */
  attempt: number;
  /** ISO-8601 time of the heartbeat. */
  at: string;
}

/** Options of {@link HeartbeatThrottle}. @internal */
export interface HeartbeatThrottleOptions {
  runId: string;
  attempt: number;
  /** Initial phase (`exporting` for export activities, `importing` for import activities). */
  phase: IngestionHeartbeatDetails['phase'];
  /** Minimum gap between two heartbeats, except on a phase change. */
  intervalMs: number;
  /** Sends one heartbeat (usually `Context.current().heartbeat`). */
  send: (details: IngestionHeartbeatDetails) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Folds pipeline events into heartbeat details and sends them at most once per `intervalMs`, immediately on a
 * phase change, and as a keep-alive (the latest details) every `intervalMs` while nothing happens — a source
 * stuck in one long batch must not trip a short heartbeat timeout, and cancellation is only delivered to an
 * activity that heartbeats.
 * @internal
 */
export class HeartbeatThrottle {
  private readonly details: IngestionHeartbeatDetails;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;
  /** Heartbeats sent so far. */
  sent = 0;

  constructor(private readonly opts: HeartbeatThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.details = {
      ...newRunProgress(opts.runId),
      phase: opts.phase,
      attempt: opts.attempt,
      at: new Date(this.now()).toISOString(),
    };
  }

  /** Send the first heartbeat and start the keep-alive timer. */
  start(): void {
    this.flush();
    this.timer = setInterval(() => {
      if (this.now() - this.lastSentAt >= this.opts.intervalMs) this.flush();
    }, this.opts.intervalMs);
    this.timer.unref?.();
  }

  /** Stop the keep-alive timer. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The details as they stand. */
  snapshot(): IngestionHeartbeatDetails {
    return { ...this.details };
  }

  /** Fold one pipeline event in; heartbeat if the phase changed or the interval has passed. */
  onEvent(event: IngestionEvent): void {
    const phaseChanged = applyProgressEvent(this.details, event);
    if (phaseChanged || this.now() - this.lastSentAt >= this.opts.intervalMs) this.flush();
  }

  private flush(): void {
    const t = this.now();
    this.lastSentAt = t;
    this.details.at = new Date(t).toISOString();
    this.sent++;
    this.opts.send({ ...this.details });
  }
}
