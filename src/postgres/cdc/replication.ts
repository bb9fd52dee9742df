import pg from 'pg';
import { guardClient } from '../connection.js';
import { quoteIdentifier } from '../identifiers.js';
import { formatLsn, PG_EPOCH_MICROS } from './pgoutput.js';

/**
 * Session settings of a replication connection: pgoutput writes values with the walsender's output functions, so
 * these make every value's text the text `PostgresSource` reads (ISO dates, UTC, hex bytea, shortest exact floats).
 */
const REPLICATION_OPTIONS =
  '-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3';

/** Bytes of received frames held before the socket is paused (backpressure). */
const HIGH_WATER_BYTES = 8 * 1024 * 1024;

/** One frame of a replication stream. */
export type Frame =
  | { kind: 'data'; walStart: bigint; walEnd: bigint; payload: Buffer }
  | { kind: 'keepalive'; walEnd: bigint; replyRequested: boolean };

/** What `CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT` answers. */
export interface CreatedSlot {
  slotName: string;
  consistentPoint: string;
  snapshotName: string;
}

/**
 * A `replication=database` connection over `pg` (docs/decisions/0015-postgres-cdc.md): creates a slot with an
 * exported snapshot, or streams a slot with pgoutput, frames queued with backpressure. Confirms a position to the
 * server only when {@link ReplicationConnection.confirm} is called with it: never on its own.
 */
export class ReplicationConnection {
  readonly #client: pg.Client;
  #queue: Frame[] = [];
  #bytes = 0;
  #paused = false;
  #wake: (() => void) | undefined;
  #error: Error | undefined;
  #ended = false;
  #closing = false;
  #confirmed = 0n;

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  /** Open a replication connection. */
  static async open(connectionString: string): Promise<ReplicationConnection> {
    const client = new pg.Client({ connectionString, replication: 'database', options: REPLICATION_OPTIONS } as any);
    guardClient(client as unknown as pg.PoolClient);
    const c = new ReplicationConnection(client);
    client.on('error', (err) => c.#fail(err));
    client.on('end', () => c.#fail(new Error('replication connection ended')));
    await client.connect();
    return c;
  }

  /** Create a logical slot with pgoutput and an exported snapshot (valid until this connection runs another command or closes). */
  async createSlot(slot: string): Promise<CreatedSlot> {
    const res = await this.#client.query(
      `CREATE_REPLICATION_SLOT ${quoteIdentifier(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    const row = res.rows[0];
    return { slotName: row.slot_name, consistentPoint: row.consistent_point, snapshotName: row.snapshot_name };
  }

  /**
   * Start streaming `slot` from `startLsn` (transactions that committed before it are skipped by the server) with the
   * publications. `confirmed` is the position already committed downstream: the only one ever reported as flushed.
   * Resolves once the server accepted the command (or rejects with its error).
   */
  async start(slot: string, startLsn: bigint, publications: string[], confirmed: bigint): Promise<void> {
    this.#confirmed = confirmed;
    const con = (this.#client as any).connection;
    con.on('copyData', (msg: { chunk: Buffer }) => this.#onFrame(msg.chunk));
    const pubs = publications.map((p) => quoteIdentifier(p)).join(',');
    const sql = `START_REPLICATION SLOT ${quoteIdentifier(slot)} LOGICAL ${formatLsn(startLsn)} (proto_version '1', publication_names '${pubs.replace(/'/g, "''")}')`;
    const started = new Promise<void>((resolve) => con.once('replicationStart', resolve));
    const ended = this.#client.query(sql).then(
      () => {
        this.#ended = true;
        this.#wakeUp();
      },
      (err) => {
        this.#fail(err);
        throw err;
      },
    );
    await Promise.race([started, ended]);
    if (this.#error) throw this.#error;
  }

  /**
   * The next frame, or undefined when none arrived within `timeoutMs` (or the stream ended). Throws the connection's
   * error (a terminated walsender, a lost slot).
   */
  async next(timeoutMs: number): Promise<Frame | undefined> {
    if (!this.#queue.length && !this.#error && !this.#ended) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const f = this.#queue.shift();
    if (f) {
      if (f.kind === 'data') this.#bytes -= f.payload.length;
      if (this.#paused && this.#bytes < HIGH_WATER_BYTES / 2) {
        this.#paused = false;
        (this.#client as any).connection.stream.resume();
      }
      return f;
    }
    if (this.#error && !this.#closing) throw this.#error;
    return undefined;
  }

  /**
   * Send a standby status update: received up to `received`, flushed (= confirmed to the slot) only the committed
   * position given to {@link ReplicationConnection.start}. `reply` asks the server for a keepalive at once.
   */
  status(received: bigint, reply: boolean): void {
    const b = Buffer.alloc(34);
    b.write('r', 0, 'latin1');
    const write = received > this.#confirmed ? received : this.#confirmed;
    b.writeBigUInt64BE(write, 1);
    b.writeBigUInt64BE(this.#confirmed, 9);
    b.writeBigUInt64BE(this.#confirmed, 17);
    b.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_MICROS, 25);
    b.writeUInt8(reply ? 1 : 0, 33);
    if (!this.#closing && !this.#error) (this.#client as any).connection.sendCopyFromChunk(b);
  }

  /** Whether the connection is still open (not closed, ended or failed): an exported snapshot lives as long. */
  get open(): boolean {
    return !this.#closing && !this.#error && !this.#ended;
  }

  /** A SQL statement on this connection (simple protocol; only before streaming). */
  query(sql: string): Promise<pg.QueryResult<any>> {
    return this.#client.query(sql);
  }

  /** Close the connection (the walsender ends; the slot becomes inactive). Idempotent, never throws. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#wakeUp();
    await Promise.race([this.#client.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  #onFrame(frame: Buffer): void {
    // pg's parser reuses its buffer once the event returns: a queued frame needs its own copy
    const chunk = Buffer.from(frame);
    const tag = chunk[0];
    if (tag === 0x77 /* w */) {
      const payload = chunk.subarray(25);
      this.#queue.push({ kind: 'data', walStart: chunk.readBigUInt64BE(1), walEnd: chunk.readBigUInt64BE(9), payload });
      this.#bytes += payload.length;
      if (!this.#paused && this.#bytes > HIGH_WATER_BYTES) {
        this.#paused = true;
        (this.#client as any).connection.stream.pause();
      }
    } else if (tag === 0x6b /* k */) {
      this.#queue.push({ kind: 'keepalive', walEnd: chunk.readBigUInt64BE(1), replyRequested: chunk[17] === 1 });
    }
    this.#wakeUp();
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#wakeUp();
  }

  #wakeUp(): void {
    this.#wake?.();
  }
}
