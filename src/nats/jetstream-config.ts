import { z } from 'zod';

const name = (what: string) =>
  z.string({ error: `Expected \`${what}\` to be a string` }).min(1, { error: `Expected \`${what}\` to be non-empty` });
const posInt = (what: string) =>
  z
    .number({ error: `Expected \`${what}\` to be a positive integer` })
    .int({ error: `Expected \`${what}\` to be a positive integer` })
    .positive({ error: `Expected \`${what}\` to be a positive integer` });

/** Where a unit without a checkpoint (and a `mode: 'full'` run) starts reading. */
const startSchema = z.union([
  z.object({ seq: posInt('startAt.seq') }).strict(),
  z
    .object({
      time: z.iso.datetime({ offset: true, error: 'Expected `startAt.time` to be an ISO-8601 date-time' }),
    })
    .strict(),
]);

/** Per-run bounds; a run stops at the first one reached, or when it caught up with the stream. */
const boundsShape = {
  /** Messages one run reads at most. @defaultValue 100000 */
  maxMessages: posInt('maxMessages').optional(),
  /** Payload bytes one run reads at most (the message that crosses it is the last). @defaultValue 64 MiB */
  maxBytes: posInt('maxBytes').optional(),
  /** Milliseconds one run keeps reading at most. @defaultValue 60000 */
  maxReadMs: posInt('maxReadMs').optional(),
};

const columnsSchema = z
  .object({
    subject: name('columns.subject').optional(),
    streamSeq: name('columns.streamSeq').optional(),
    timestamp: name('columns.timestamp').optional(),
    /** `false` leaves headers out. */
    headers: z.union([name('columns.headers'), z.literal(false)]).optional(),
    /** The payload's column when `payload` is not `'columns'`. */
    payload: name('columns.payload').optional(),
  })
  .strict();

const unitSchema = z
  .object({
    /**
     * Subjects of the stream this unit reads (wildcards allowed); absent: every subject of the stream. More than
     * one subject needs nats-server 2.10 or later.
     */
    subjects: z.array(name('subjects[]')).min(1).optional(),
    /**
     * How a payload becomes a row: `'columns'` — a JSON object whose members become columns (the default);
     * `'json'` — the JSON text, exactly as published, in one JSON column; `'text'` — UTF-8 text; `'bytes'` — the
     * raw bytes.
     * @defaultValue 'columns'
     */
    payload: z.enum(['columns', 'json', 'text', 'bytes']).optional(),
    startAt: startSchema.optional(),
    ...boundsShape,
    /** Primary key of the rows (informational; pass it to `runUnit` for merge sinks). */
    primaryKey: z.array(name('primaryKey[]')).min(1).optional(),
    title: z.string().optional(),
  })
  .strict();

/**
 * The JSON config of {@link JetStreamSource} (what the registry validates and exports as JSON Schema).
 * @public
 */
export const jetStreamConfigSchema = z
  .object({
    /** NATS server URLs (`nats://host:4222` or `host:port`); not needed when a connection is injected. */
    servers: z.union([name('servers'), z.array(name('servers[]')).min(1)]).optional(),
    /** The JetStream stream every unit reads. */
    stream: name('stream'),
    units: z
      .record(z.string().min(1), unitSchema)
      .refine((u) => Object.keys(u).length > 0, { error: 'Expected at least one unit' }),
    ...boundsShape,
    /** Messages per batch, and the size of the client's pull buffer. @defaultValue 1000 */
    fetchBatch: posInt('fetchBatch').max(10_000).optional(),
    /** Names of the metadata columns. @defaultValue subject, stream_seq, timestamp, headers, payload */
    columns: columnsSchema.optional(),
    /** Client name shown by the server (`nats server report connections`). @defaultValue 'nucleus-ingestion' */
    name: z.string().min(1).optional(),
  })
  .strict();

/** Parsed config of {@link JetStreamSource}. @public */
export type JetStreamConfig = z.infer<typeof jetStreamConfigSchema>;
/** One unit of a {@link JetStreamConfig}. @public */
export type JetStreamUnitConfig = JetStreamConfig['units'][string];
