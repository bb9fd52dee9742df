import type { IngestionContext } from '../contracts/context.js';
import type {
  RecordReader,
  RecordWriter,
  SealOptions,
  SessionDescription,
  StagedSlice,
  StagingHandle,
  StagingProvider,
  StagingSession,
  StagingSessionRef,
  SweepOptions,
  SweepReport,
  WriterOptions,
} from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { cloneRow, estimateRowBytes, forEachRow } from '../util/rows.js';

interface SliceData {
  rows: Row[];
  bytes: number;
}

interface SessionData {
  ref: StagingSessionRef;
  slices: Map<number, SliceData>;
  schema?: RecordSchema;
  sealed: boolean;
  landed: boolean;
  abandoned: boolean;
  /** Highest fencing token the session was claimed with. */
  fence?: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * Staging in process memory, for unit-testing pipelines. Rows are copied on write and on read, so later
 * mutation by the caller (or a sink) cannot change staged data. Sessions can be reopened from their ref
 * through the same provider instance.
 *
 * @example
 * ```ts
 * import { MemoryStagingProvider, MemoryKvStore, runUnit } from '@nucleus/ingestion';
 * const staging = new MemoryStagingProvider();
 * ```
 * @public
 */
export class MemoryStagingProvider implements StagingProvider {
  readonly id = 'memory';
  /** Sessions live in this process: a run another process left pending is discarded by the next run. */
  readonly processLocal = true;
  readonly #sessions = new Map<string, SessionData>();
  readonly #bucket: string;

  /** @param opts.bucket - bucket name shown in handles. @defaultValue 'memory' */
  constructor(opts: { bucket?: string } = {}) {
    this.#bucket = opts.bucket ?? 'memory';
  }

  async allocateSession(ctx: IngestionContext): Promise<StagingSession> {
    const ref: StagingSessionRef = {
      provider: this.id,
      sessionId: sessionIdOf(ctx.workspaceId, ctx.endpointId, ctx.runId),
      runId: ctx.runId,
      workspaceId: ctx.workspaceId,
      endpointId: ctx.endpointId,
      unitId: ctx.unitId,
      vendor: ctx.vendor,
      ...(ctx.sinkId !== undefined ? { sinkId: ctx.sinkId } : {}),
    };
    let data = this.#sessions.get(ref.sessionId);
    if (!data) {
      data = {
        ref,
        slices: new Map(),
        sealed: false,
        landed: false,
        abandoned: false,
        createdAt: Date.now(),
        updatedAt: Date.now(),
      };
      this.#sessions.set(ref.sessionId, data);
    }
    return new MemorySession(data, this.#bucket, () => this.#sessions.delete(ref.sessionId));
  }

  async openSession(ref: StagingSessionRef): Promise<StagingSession> {
    if (ref?.provider !== this.id) {
      throw new IngestError(
        'config_invalid',
        `Session ref belongs to provider "${String(ref?.provider)}", not "${this.id}"`,
      );
    }
    const data = this.#sessions.get(ref.sessionId);
    if (!data)
      throw new IngestError(
        'not_found',
        `Staging session ${ref.sessionId} does not exist (memory staging lives in one process)`,
      );
    return new MemorySession(data, this.#bucket, () => this.#sessions.delete(ref.sessionId));
  }

  async sweep(opts: SweepOptions): Promise<SweepReport> {
    const now = Date.now();
    const abandonedAfter = opts.abandonedAfterMs ?? opts.olderThanMs * 7;
    const report: SweepReport = {
      sessionsScanned: 0,
      sessionsDeleted: 0,
      sessionsKept: 0,
      objectsDeleted: 0,
      deleted: [],
    };
    for (const [id, data] of [...this.#sessions]) {
      throwIfAborted(opts.signal, 'Sweep');
      report.sessionsScanned++;
      const age = now - data.updatedAt;
      const due = data.landed || data.abandoned ? age >= opts.olderThanMs : age >= abandonedAfter;
      if (!due || (opts.keep && (await opts.keep(data.ref)))) {
        report.sessionsKept++;
        continue;
      }
      this.#sessions.delete(id);
      report.sessionsDeleted++;
      report.objectsDeleted += data.slices.size;
      report.deleted.push(data.ref);
    }
    return report;
  }
}

function sessionIdOf(workspaceId: string, endpointId: string, runId: string): string {
  return [workspaceId, endpointId, runId].map(encodeURIComponent).join('/');
}

class MemorySession implements StagingSession {
  readonly id: string;
  readonly ref: StagingSessionRef;
  readonly #data: SessionData;
  readonly #bucket: string;
  readonly #forget: () => void;
  #closed = false;
  #token: number | undefined;

  constructor(data: SessionData, bucket: string, forget: () => void) {
    this.#data = data;
    this.#bucket = bucket;
    this.#forget = forget;
    this.id = data.ref.sessionId;
    this.ref = data.ref;
  }

  writer(opts: WriterOptions = {}): RecordWriter {
    this.#assertWritable();
    const data = this.#data;
    const index = opts.slice ?? (data.slices.size === 0 ? 0 : Math.max(...data.slices.keys()) + 1);
    if (!Number.isInteger(index) || index < 0) {
      throw new IngestError('config_invalid', `Expected \`slice\` to be a non-negative integer, got ${index}`);
    }
    if (opts.schema && !data.schema) data.schema = opts.schema;
    const rows: Row[] = [];
    let bytes = 0;
    let state: 'open' | 'closed' | 'aborted' = 'open';
    const sessionId = this.id;
    const assertOpen = () => {
      if (state !== 'open')
        throw new IngestError(
          'staging_failed',
          `Writer for slice ${index} of session ${sessionId} is already ${state}`,
        );
      this.#assertWritable();
    };
    return {
      writeBatch: async (batch) => {
        assertOpen();
        throwIfAborted(opts.signal, `Writing slice ${index}`);
        await forEachRow(batch, (row) => {
          rows.push(cloneRow(row));
          bytes += estimateRowBytes(row);
        });
      },
      close: async () => {
        assertOpen();
        this.#assertFence(`finish slice ${index}`);
        state = 'closed';
        data.slices.set(index, { rows, bytes });
        data.updatedAt = Date.now();
      },
      abort: async () => {
        if (state === 'open') state = 'aborted';
      },
    };
  }

  reader(opts: { slice?: number; signal?: AbortSignal } = {}): RecordReader {
    const data = this.#data;
    const sessionId = this.id;
    return {
      async *iterBatches(chunkSize: number) {
        if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
          throw new IngestError('config_invalid', `Expected \`chunkSize\` to be a positive integer, got ${chunkSize}`);
        }
        const indices = opts.slice === undefined ? [...data.slices.keys()].sort((a, b) => a - b) : [opts.slice];
        for (const i of indices) {
          const slice = data.slices.get(i);
          if (!slice)
            throw new IngestError('staging_corrupt', `Slice ${i} of session ${sessionId} is missing`, {
              details: { slice: i },
            });
          for (let at = 0; at < slice.rows.length; at += chunkSize) {
            throwIfAborted(opts.signal, `Reading session ${sessionId}`);
            yield slice.rows.slice(at, at + chunkSize).map(cloneRow);
          }
        }
      },
    };
  }

  async handles(): Promise<StagingHandle[]> {
    return this.#slices().map((s) => s.handle!);
  }

  async describe(): Promise<SessionDescription> {
    const slices = this.#slices();
    return {
      ref: this.ref,
      sealed: this.#data.sealed,
      landed: this.#data.landed,
      abandoned: this.#data.abandoned,
      slices,
      ...(this.#data.schema ? { schema: this.#data.schema } : {}),
      rows: slices.reduce((n, s) => n + s.rows, 0),
      bytes: slices.reduce((n, s) => n + s.bytes, 0),
    };
  }

  async fence(token: number): Promise<void> {
    this.#token = token;
    this.#assertFence('claim');
    this.#data.fence = token;
  }

  async seal(opts: SealOptions = {}): Promise<void> {
    this.#assertFence('seal');
    if (opts.expectedSlices) {
      const have = [...this.#data.slices.keys()].sort((a, b) => a - b);
      const want = [...opts.expectedSlices].sort((a, b) => a - b);
      if (have.length !== want.length || have.some((v, i) => v !== want[i])) {
        throw new IngestError(
          'staging_conflict',
          `Cannot seal session ${this.id}: it holds slices [${have.join(', ')}], expected [${want.join(', ')}]`,
          { retryable: true, details: { sessionId: this.id, have, want } },
        );
      }
    }
    this.#data.sealed = true;
    this.#data.updatedAt = Date.now();
  }

  async markAbandoned(): Promise<void> {
    this.#data.abandoned = true;
    this.#data.updatedAt = Date.now();
  }

  async markLanded(): Promise<void> {
    if (!this.#data.sealed)
      throw new IngestError('staging_failed', `Session ${this.id} cannot land before it is sealed`);
    this.#data.landed = true;
    this.#data.updatedAt = Date.now();
  }

  async destroy(): Promise<void> {
    this.#assertFence('destroy');
    this.#data.slices.clear();
    this.#data.sealed = false;
    this.#data.landed = false;
    this.#forget();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** A holder with a higher fencing token claimed the session: this one is fenced off. */
  #assertFence(what: string): void {
    const fence = this.#data.fence;
    if (this.#token !== undefined && fence !== undefined && fence > this.#token) {
      throw new IngestError(
        'lease_lost',
        `Cannot ${what}: session ${this.id} was claimed by a newer lease holder (token ${fence} > ${this.#token})`,
        { retryable: true, details: { sessionId: this.id, token: this.#token, fence } },
      );
    }
  }

  #assertWritable(): void {
    if (this.#closed) throw new IngestError('staging_failed', `Session ${this.id} is already closed`);
    if (this.#data.sealed) throw new IngestError('staging_failed', `Session ${this.id} is sealed; no more writers`);
  }

  #slices(): StagedSlice[] {
    return [...this.#data.slices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, s]) => ({
        index,
        rows: s.rows.length,
        bytes: s.bytes,
        codec: 'memory',
        handle: {
          bucket: this.#bucket,
          key: `${this.id}/${index}`,
          contentType: 'application/x-memory-rows',
          metadata: { rows: String(s.rows.length) },
        },
      }));
  }
}
