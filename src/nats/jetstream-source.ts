import type { ConsumerInfo, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type { ReadRequest, SourceBatch, SourceEndpoint, SourceRejection } from '../contracts/source-endpoint.js';
import type { Json, RecordSchema, Row } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { loadOptionalPeer } from '../util/optional-peer.js';
import { type JetStreamConfig, type JetStreamUnitConfig, jetStreamConfigSchema } from './jetstream-config.js';
import { DEFAULT_COLUMNS, type MessageColumns, MessageRows, RunSchema } from './message-rows.js';

/**
 * Checkpoint of a JetStream unit: the stream sequence of the last message the run took (staged, or rejected under
 * the run's policy). The next run reads the unit's subjects from `seq + 1`.
 * @public
 */
export interface JetStreamCheckpoint {
  [key: string]: Json;
  /** The stream the sequence belongs to. */
  stream: string;
  /** Stream sequence of the last message taken. */
  seq: number;
}

/** Options of {@link JetStreamSource}: the JSON config, and optionally a connection the caller owns. @public */
export type JetStreamSourceOptions = Omit<JetStreamConfig, 'servers'> & {
  servers?: JetStreamConfig['servers'];
  /** An open connection (from `@nats-io/transport-node`'s `connect`); the source never closes it. */
  connection?: NatsConnection;
};

/**
 * Descriptor of {@link JetStreamSource}: id `nats.jetstream`, family `stream`.
 * @public
 */
export const jetStreamDescriptor: EndpointDescriptor<JetStreamConfig> = {
  id: 'nats.jetstream',
  role: 'source',
  family: 'stream',
  title: 'NATS JetStream',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: jetStreamConfigSchema,
};

/** A read that receives nothing for this long ends with what it has (the rest was removed by the stream's limits). */
const IDLE_MS = 5000;

interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  deliverStartSequence: string;
  deliverStartTime: string;
}

/**
 * A source that reads a NATS JetStream stream, one unit per subject filter, **by stream sequence**: each run opens
 * an ordered consumer (ephemeral, no acks) at the sequence after the unit's checkpoint and pulls until it caught up
 * with the stream as it was when the run began, or a bound (`maxMessages`, `maxBytes`, `maxReadMs`) is reached.
 * The checkpoint is that stream sequence and nothing else holds a position, so a crash at any point re-reads from
 * the last committed checkpoint and the sink's ledger drops what it already has: exactly once into the PostgreSQL
 * and MySQL sinks (docs/decisions/0016-jetstream-delivery.md). Streams with `workqueue` or `interest` retention,
 * which delete a message only when a consumer acknowledges it, are refused.
 *
 * A row is the payload (by default the members of a JSON object; or the JSON text, text or bytes in one column)
 * plus `subject`, `stream_seq` (int64), `timestamp` (publish time, microseconds) and `headers` (a JSON object or
 * `null`). A message that cannot be a row (malformed JSON, not an object, over `policy.maxRowBytes`) is reported
 * as rejected with its stream, subject and sequence: the run fails with `row_rejected`, or with
 * `policy.onRejectedRow: 'dead-letter'` hands it to the dead-letter sink and goes on.
 *
 * `mode: 'full'` replays a unit from its `startAt` (the stream's first message by default); {@link
 * JetStreamSource.checkpointAt} gives the checkpoint that replays it from a sequence or a time, and {@link
 * JetStreamSource.pending} the unit's lag behind a checkpoint.
 *
 * @example
 * ```ts
 * import { JetStreamSource } from '@nucleus/ingestion/nats';
 * const source = new JetStreamSource({
 *   servers: 'nats://127.0.0.1:4222',
 *   stream: 'ORDERS',
 *   units: { created: { subjects: ['orders.created.>'] } },
 *   maxMessages: 50_000,
 * });
 * // runUnit({ source, unit: { endpointId: 'nats', unitId: 'created' }, … })
 * ```
 * @throws IngestError `config_invalid` listing every issue of a malformed config.
 * @public
 */
export class JetStreamSource implements SourceEndpoint<JetStreamCheckpoint> {
  readonly descriptor: EndpointDescriptor<JetStreamConfig> = jetStreamDescriptor;
  readonly #config: JetStreamConfig;
  readonly #injected: NatsConnection | undefined;
  readonly #columns: MessageColumns;
  #nats: Promise<Nats> | undefined;

  /**
   * Validate the config; nothing connects until the first call that needs the server.
   * @throws IngestError `config_invalid` listing every issue.
   */
  constructor(options: JetStreamSourceOptions) {
    const { connection, ...config } = (options ?? {}) as JetStreamSourceOptions;
    const parsed = jetStreamConfigSchema.safeParse(config);
    if (!parsed.success) throw configInvalid('Invalid JetStreamSource config', parsed.error.issues);
    if (!connection && parsed.data.servers === undefined) {
      throw new IngestError(
        'config_invalid',
        'Invalid JetStreamSource config: servers: Expected `servers` or a `connection`',
      );
    }
    this.#config = parsed.data;
    this.#injected = connection;
    this.#columns = { ...DEFAULT_COLUMNS, ...(parsed.data.columns ?? {}) };
  }

  /** The configured units. */
  async collectMetadata(_ctx: IngestionContext): Promise<UnitMetadata[]> {
    return Object.entries(this.#config.units).map(([unitId, u]) => ({
      unitId,
      title: u.title ?? unitId,
      kind: 'stream',
      cursorColumns: [this.#columns.streamSeq],
      ...(u.primaryKey ? { primaryKey: u.primaryKey } : {}),
      capabilities: ['metadata.preview', 'ingest.full', 'ingest.incremental'],
    }));
  }

  /** Whether the unit is configured (nothing is read). @throws IngestError `not_found` for an unknown unit */
  async checkUnit(unitId: string): Promise<void> {
    this.#unit(unitId);
  }

  /**
   * Up to `limit` rows from the unit's start (rejected messages are skipped).
   * @throws IngestError as {@link JetStreamSource.read}
   */
  async preview(req: { unitId: string; limit: number }, ctx: IngestionContext): Promise<{ rows: Row[] }> {
    const rows: Row[] = [];
    if (req.limit <= 0) return { rows };
    for await (const batch of this.#read({ unitId: req.unitId, mode: 'full', checkpoint: null }, ctx, req.limit)) {
      rows.push(...batch.rows.slice(0, req.limit - rows.length));
      if (rows.length >= req.limit) break;
    }
    return { rows };
  }

  /**
   * Read a unit from the message after the checkpoint (or from its `startAt` without one, and in `mode: 'full'`);
   * each batch is one pull and carries the checkpoint after it.
   * @throws IngestError `not_found` for an unknown unit or stream; `config_invalid` for a stream whose retention
   * needs acknowledgements or a checkpoint of another stream; `source_failed` when the server cannot be reached
   * (retryable) or the checkpoint is ahead of the stream (not retryable: the stream was recreated);
   * `dependency_missing` without `@nats-io/jetstream` / `@nats-io/transport-node`; `aborted` when `ctx.signal` fires.
   */
  read(req: ReadRequest<JetStreamCheckpoint>, ctx: IngestionContext): AsyncGenerator<SourceBatch<JetStreamCheckpoint>> {
    return this.#read(req, ctx);
  }

  /**
   * Nothing to release upstream: reading by sequence leaves no acknowledgement behind (ADR 0016). Present so the
   * contract's intent is visible: the position is the committed checkpoint alone.
   */
  async confirm(_req: { unitId: string; checkpoint: JetStreamCheckpoint | null }): Promise<void> {}

  /**
   * How many messages of the unit's subjects the stream holds after `checkpoint` (its lag); from the unit's start
   * when `checkpoint` is `null`.
   * @throws IngestError `not_found`, `source_failed` as {@link JetStreamSource.read}
   */
  async pending(unitId: string, checkpoint: JetStreamCheckpoint | null): Promise<number> {
    const unit = this.#unit(unitId);
    const nats = await this.#connect(unitId);
    await this.#streamInfo(nats, unitId, checkpoint);
    const consumer = await this.#consumer(nats, unitId, unit, checkpoint);
    try {
      const info = (await consumer.info(true)) as ConsumerInfo;
      return info.num_pending;
    } finally {
      await (consumer as { delete?: () => Promise<unknown> }).delete?.().catch(() => {});
    }
  }

  /**
   * The checkpoint that makes the next incremental run of `unitId` start at stream sequence `at.seq`, or at the
   * first message published at or after `at.time`: write it as the unit's checkpoint to replay the unit from
   * there (docs/nats.md, "Replay").
   * @throws IngestError `not_found` for an unknown unit; `source_failed` when the server cannot be reached
   */
  async checkpointAt(unitId: string, at: { seq: number } | { time: string | Date }): Promise<JetStreamCheckpoint> {
    this.#unit(unitId);
    const stream = this.#config.stream;
    if ('seq' in at) {
      if (!Number.isSafeInteger(at.seq) || at.seq < 1) {
        throw new IngestError('config_invalid', `Expected \`seq\` to be a positive integer, got ${at.seq}`);
      }
      return { stream, seq: at.seq - 1 };
    }
    const time = at.time instanceof Date ? at.time : new Date(at.time);
    if (Number.isNaN(time.getTime())) {
      throw new IngestError('config_invalid', `Expected \`time\` to be a date, got ${String(at.time)}`);
    }
    const nats = await this.#connect(unitId);
    const info = await this.#streamInfo(nats, unitId, null);
    const consumer = await nats.js.consumers.get(stream, {
      ...this.#filter(this.#unit(unitId)),
      deliver_policy: nats.deliverStartTime as never,
      opt_start_time: time.toISOString(),
    });
    try {
      const msg = await consumer.next({ expires: 1000 });
      // Nothing at or after `time`: start after the stream's last message.
      return { stream, seq: msg ? msg.seq - 1 : info.state.last_seq };
    } catch (err) {
      throw this.#failed(err, unitId, 'finding the first message after a time');
    } finally {
      await (consumer as { delete?: () => Promise<unknown> }).delete?.().catch(() => {});
    }
  }

  /** Close the connection the source opened (an injected one stays open). */
  async close(): Promise<void> {
    const pending = this.#nats;
    this.#nats = undefined;
    if (!pending || this.#injected) return;
    const nats = await pending.catch(() => undefined);
    await nats?.nc.close().catch(() => {});
  }

  async *#read(
    req: ReadRequest<JetStreamCheckpoint>,
    ctx: IngestionContext,
    limit?: number,
  ): AsyncGenerator<SourceBatch<JetStreamCheckpoint>> {
    const unit = this.#unit(req.unitId);
    const cfg = this.#config;
    const checkpoint = req.mode === 'incremental' ? req.checkpoint : null;
    const nats = await this.#connect(req.unitId);
    const info = await this.#streamInfo(nats, req.unitId, checkpoint);
    if (checkpoint && info.state.first_seq > checkpoint.seq + 1 && info.state.messages > 0) {
      ctx.logger.warn(
        `JetStream unit ${req.unitId}: messages ${checkpoint.seq + 1}..${info.state.first_seq - 1} of stream ${cfg.stream} are gone (removed by the stream's limits before this unit read them)`,
      );
    }
    const maxMessages = limit ?? unit.maxMessages ?? cfg.maxMessages ?? 100_000;
    const maxBytes = unit.maxBytes ?? cfg.maxBytes ?? 64 * 1024 * 1024;
    const maxReadMs = unit.maxReadMs ?? cfg.maxReadMs ?? 60_000;
    const fetchBatch = cfg.fetchBatch ?? 1000;
    const rows = new MessageRows(cfg.stream, unit.payload ?? 'columns', this.#columns, req.hints?.maxRowBytes);
    const schema = unit.payload === undefined || unit.payload === 'columns' ? new RunSchema(rows.metaFields()) : null;
    let reported = false;

    const consumer = await this.#consumer(nats, req.unitId, unit, checkpoint);
    let iter: ConsumerMessages | undefined;
    let idle: ReturnType<typeof setInterval> | undefined;
    let idledOut = false;
    const onAbort = () => iter?.stop();
    try {
      const ci = (await consumer.info(true)) as ConsumerInfo;
      // Bounded by the stream as it was when the read began: publishers that go on do not keep a run alive.
      let remaining = Math.min(ci.num_pending, maxMessages);
      if (remaining === 0) return;
      let bytes = 0;
      const deadline = Date.now() + maxReadMs;

      /** One batch of pulled messages → rows, rejections and the checkpoint after the last message taken. */
      const take = (msgs: JsMsg[]): { batch?: SourceBatch<JetStreamCheckpoint>; stop: boolean } => {
        const out: Row[] = [];
        const rejected: SourceRejection[] = [];
        let last = -1;
        let stop = false;
        const decoded = msgs.map((m) => rows.decode(m));
        if (schema && !schema.fixed) {
          const sample = decoded.filter((d) => d.row).map((d) => d.row!);
          if (sample.length) schema.infer(sample);
        }
        for (let i = 0; i < msgs.length; i++) {
          const d = decoded[i];
          if (d.rejected) rejected.push(d.rejected);
          else {
            const misfit = schema?.fixed ? schema.misfit(d.row) : undefined;
            if (misfit !== undefined) {
              ctx.logger.info(
                `JetStream unit ${req.unitId}: message ${msgs[i].seq} has member "${misfit}" outside this run's schema; the run ends before it and the next run widens the schema`,
              );
              stop = true;
              break;
            }
            out.push(d.row);
          }
          bytes += msgs[i].data.byteLength;
          last = i;
          if (bytes >= maxBytes) {
            stop = true; // the message that reaches maxBytes is the run's last
            break;
          }
        }
        if (last < 0) return { stop };
        const batch: SourceBatch<JetStreamCheckpoint> = {
          rows: out,
          checkpoint: { stream: cfg.stream, seq: msgs[last].seq },
        };
        if (rejected.length) batch.rejected = rejected;
        if (!reported && (schema ? schema.fixed : true)) {
          batch.schema = schema ? schema.schema() : ({ fields: rows.metaFields() } satisfies RecordSchema);
          reported = true;
        }
        return { batch, stop };
      };

      // consume() keeps pull requests in flight while a batch is staged; its buffer is one batch.
      try {
        iter = await consumer.consume({ max_messages: Math.min(fetchBatch, remaining) });
      } catch (err) {
        throw this.#failed(err, req.unitId, 'pulling messages');
      }
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      // Messages counted at the start can be removed by the stream's limits before we get them: when nothing comes
      // for a while, the read ends with what it has.
      let lastAt = Date.now();
      let suspended = false; // the pipeline is staging a batch: not idleness
      idle = setInterval(() => {
        if (suspended || Date.now() - lastAt < IDLE_MS) return;
        idledOut = true;
        iter?.stop();
      }, IDLE_MS / 5);
      let msgs: JsMsg[] = [];
      let stop = false;
      try {
        for await (const m of iter) {
          lastAt = Date.now();
          msgs.push(m);
          remaining--;
          const end = remaining === 0 || m.info.pending === 0 || lastAt >= deadline;
          if (msgs.length < fetchBatch && !end) continue;
          const r = take(msgs);
          msgs = [];
          if (r.batch) {
            suspended = true;
            yield r.batch;
            suspended = false;
            lastAt = Date.now();
          }
          if (r.stop || end) {
            stop = true;
            break;
          }
        }
      } catch (err) {
        if (ctx.signal.aborted) throw abortedError(req.unitId);
        throw this.#failed(err, req.unitId, 'pulling messages');
      }
      if (ctx.signal.aborted) throw abortedError(req.unitId);
      if (!stop && msgs.length) {
        if (idledOut)
          ctx.logger.warn(
            `JetStream unit ${req.unitId}: fewer messages than counted at the start (removed by the stream's limits meanwhile)`,
          );
        const r = take(msgs);
        if (r.batch) yield r.batch;
      }
    } finally {
      clearInterval(idle);
      ctx.signal.removeEventListener('abort', onAbort);
      iter?.stop();
      await (consumer as { delete?: () => Promise<unknown> }).delete?.().catch(() => {});
    }
  }

  #unit(unitId: string): JetStreamUnitConfig {
    const unit = Object.hasOwn(this.#config.units, unitId) ? this.#config.units[unitId] : undefined;
    if (!unit) {
      throw new IngestError(
        'not_found',
        `JetStream source has no unit "${unitId}" (configured: ${Object.keys(this.#config.units).join(', ')})`,
        { details: { unitId } },
      );
    }
    return unit;
  }

  #filter(unit: JetStreamUnitConfig): { filter_subjects?: string | string[] } {
    const s = unit.subjects;
    if (!s) return {};
    return { filter_subjects: s.length === 1 ? s[0] : s };
  }

  /** An ordered consumer at the message after `checkpoint`, or at the unit's start. */
  async #consumer(nats: Nats, unitId: string, unit: JetStreamUnitConfig, checkpoint: JetStreamCheckpoint | null) {
    const start = unit.startAt;
    const from = checkpoint
      ? { deliver_policy: nats.deliverStartSequence, opt_start_seq: checkpoint.seq + 1 }
      : start && 'seq' in start
        ? { deliver_policy: nats.deliverStartSequence, opt_start_seq: start.seq }
        : start
          ? { deliver_policy: nats.deliverStartTime, opt_start_time: new Date(start.time).toISOString() }
          : {};
    try {
      return await nats.js.consumers.get(this.#config.stream, { ...this.#filter(unit), ...(from as object) });
    } catch (err) {
      throw this.#failed(err, unitId, 'creating the consumer');
    }
  }

  async #streamInfo(nats: Nats, unitId: string, checkpoint: JetStreamCheckpoint | null) {
    const stream = this.#config.stream;
    let info: Awaited<ReturnType<JetStreamManager['streams']['info']>>;
    try {
      info = await nats.jsm.streams.info(stream);
    } catch (err) {
      if (/stream not found/i.test((err as Error)?.message ?? '')) {
        throw new IngestError('not_found', `JetStream stream "${stream}" does not exist (unit ${unitId})`, {
          cause: err,
          details: { stream, unitId },
        });
      }
      throw this.#failed(err, unitId, 'reading the stream info');
    }
    const retention = info.config.retention as string;
    if (retention !== 'limits') {
      throw new IngestError(
        'config_invalid',
        `JetStream stream "${stream}" has ${retention} retention; JetStreamSource reads by sequence without acknowledgements and needs limits retention (ADR 0016)`,
        { details: { stream, retention } },
      );
    }
    if (checkpoint) {
      if (checkpoint.stream !== stream) {
        throw new IngestError(
          'config_invalid',
          `The checkpoint of unit ${unitId} is a position in stream "${checkpoint.stream}", not "${stream}"`,
          { details: { unitId, stream, checkpointStream: checkpoint.stream } },
        );
      }
      if (checkpoint.seq > info.state.last_seq) {
        throw new IngestError(
          'source_failed',
          `The checkpoint of unit ${unitId} (sequence ${checkpoint.seq}) is ahead of stream "${stream}" (last sequence ${info.state.last_seq}): the stream was recreated; replay the unit (docs/nats.md)`,
          { retryable: false, details: { unitId, stream, seq: checkpoint.seq, lastSeq: info.state.last_seq } },
        );
      }
    }
    return info;
  }

  #connect(unitId: string): Promise<Nats> {
    this.#nats ??= this.#open().catch((err) => {
      this.#nats = undefined;
      throw this.#failed(err, unitId, 'connecting');
    });
    return this.#nats;
  }

  async #open(): Promise<Nats> {
    const [transport, jetstream] = await Promise.all([
      loadOptionalPeer('@nats-io/transport-node', () => import('@nats-io/transport-node'), 'JetStreamSource'),
      loadOptionalPeer('@nats-io/jetstream', () => import('@nats-io/jetstream'), 'JetStreamSource'),
    ]);
    const nc =
      this.#injected ??
      (await transport.connect({
        servers: this.#config.servers,
        name: this.#config.name ?? 'nucleus-ingestion',
        maxReconnectAttempts: 10,
      }));
    try {
      return {
        nc,
        js: jetstream.jetstream(nc),
        jsm: await jetstream.jetstreamManager(nc),
        deliverStartSequence: jetstream.DeliverPolicy.StartSequence,
        deliverStartTime: jetstream.DeliverPolicy.StartTime,
      };
    } catch (err) {
      if (!this.#injected) await nc.close().catch(() => {});
      throw err;
    }
  }

  #failed(err: unknown, unitId: string, what: string): IngestError {
    if (IngestError.is(err)) return err;
    const text = err instanceof Error ? err.message : String(err);
    return new IngestError(
      'source_failed',
      `JetStream source failed while ${what} (stream ${this.#config.stream}, unit ${unitId}): ${text}`,
      { cause: err, retryable: true, details: { stream: this.#config.stream, unitId } },
    );
  }
}

function abortedError(unitId: string): IngestError {
  return new IngestError('aborted', `JetStream read of unit ${unitId} aborted`);
}
