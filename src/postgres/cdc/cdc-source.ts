import { createHash } from 'node:crypto';
import pg from 'pg';
import type { IngestionContext } from '../../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../../contracts/endpoint.js';
import type {
  EncodedBatch,
  ExportPlan,
  ReadRequest,
  SliceSpec,
  SourceBatch,
  SourceEndpoint,
} from '../../contracts/source-endpoint.js';
import type { FieldSchema, Json, RecordSchema, Row, Value } from '../../contracts/values.js';
import { configInvalid } from '../../errors/config-invalid.js';
import { IngestError } from '../../errors/ingest-error.js';
import { CHANGE_FIELDS, changeSchema } from '../../sql/change-rows.js';
import { registerUrlPassword } from '../../sql/endpoint-options.js';
import { throwIfAborted } from '../../util/abort.js';
import { JsonText } from '../../values/json-text.js';
import { Timestamp } from '../../values/timestamp.js';
import { type ColumnInfo, describeTable, fieldSchema, recordSchema } from '../catalog.js';
import { guardClient } from '../connection.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier, type TableName } from '../identifiers.js';
import { PG_COPY_CODEC_ID } from '../pg-copy-codec.js';
import { wrapPgError } from '../pg-errors.js';
import { createTypeParsers } from '../type-mapping.js';
import {
  type PostgresCdcSourceConfig,
  type PostgresCdcSourceOptions,
  type PostgresCdcUnitConfig,
  postgresCdcSourceConfigSchema,
  postgresCdcSourceDescriptor,
} from './cdc-config.js';
import {
  decodePgOutput,
  formatLsn,
  PG_EPOCH_MICROS,
  parseLsn,
  type RelationColumn,
  type TupleValue,
  UNCHANGED,
} from './pgoutput.js';
import { ReplicationConnection } from './replication.js';
import { SnapshotSlices } from './snapshot-slices.js';

/**
 * Checkpoint of a {@link PostgresCdcSource} unit: the slot and the position after the last change the sink committed
 * (the end of a commit record, or a position the stream reached with no transaction open).
 * @public
 */
export interface PostgresCdcCheckpoint {
  [key: string]: string | number;
  v: 1;
  /** The unit's replication slot. */
  slot: string;
  /** The position to resume at, PostgreSQL's LSN text (`16/B374D848`). */
  lsn: string;
}

/** A unit's slot as `status()` reports it. @public */
export interface PostgresCdcSlotStatus {
  unitId: string;
  slot: string;
  /** Whether the slot exists (it is created by the unit's first run). */
  exists: boolean;
  /** `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL's `wal_status`); a lost slot cannot be resumed. */
  walStatus?: string;
  /** Whether a walsender streams the slot now. */
  active?: boolean;
  restartLsn?: string;
  confirmedFlushLsn?: string;
  /** Bytes of WAL the server keeps for the slot (current position − restart_lsn). */
  retainedBytes?: number;
  /** Bytes of WAL written since the slot's confirmed position (current position − confirmed_flush_lsn). */
  lagBytes?: number;
  /** Whether `retainedBytes` passed `lagWarnBytes`. */
  warning?: boolean;
}

interface Unit {
  unitId: string;
  table: TableName;
  /** The unit's slot (for the sink the call is for). */
  slot: string;
  /** The slot the unit config names, if any (used as it is, whatever the sink). */
  explicitSlot?: string;
  publications: string[];
}

/**
 * The exported snapshot of a slot this instance created, held open (its replication connection idle) while the planned
 * snapshot's slices are read: each slice is read on a pooled connection inside it.
 */
interface HeldSnapshot {
  slot: string;
  /** The exported snapshot's id (`SET TRANSACTION SNAPSHOT`). */
  id: string;
  /** The slot's consistent point (the snapshot rows' `_lsn`, the plan's checkpoint). */
  lsn: string;
  repl: ReplicationConnection;
  reader: SnapshotSlices;
  /** Slices of the plan not yet read to their end. */
  pending: Set<number>;
  /** Slice reads under way. */
  active: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** The bounds of a snapshot slice: the snapshot it was planned in, its consistent point, the planner's own bounds. */
interface SnapshotBounds {
  snapshot: string;
  lsn: string;
  slice?: Json;
}

/** A relation of the stream, decoded for one unit. */
interface StreamRelation {
  columns: RelationColumn[];
  names: string[];
  parse: Array<(text: string) => Value>;
  schema: RecordSchema;
  /** Indexes of the primary key (or replica identity) columns. */
  key: number[];
}

/** Session settings of the snapshot's transaction: the text forms `PostgresSource` reads. */
const READ_SETTINGS =
  "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3";
const DEFAULTS = { maxRows: 100_000, maxBytes: 64 * 1024 * 1024, maxWaitMs: 30_000, batchRows: 5_000 };
const LAG_WARN_BYTES = 1024 ** 3;
/**
 * A held snapshot with no slice read under way for this long is let go (its run failed or was given up): an open
 * exported snapshot holds back the server's xmin horizon (vacuum). A run resumed after that plans again.
 */
const SNAPSHOT_IDLE_MS = 5 * 60_000;
/** Pooled connections: the catalog and slot administration, and the snapshot slices read concurrently. */
const POOL_MAX = 6;
/** How often an idle stream asks the server where it is. */
const POLL_MS = 200;
/** A stream whose server position has not moved for this long, outside a transaction, is caught up. */
const IDLE_MS = 1_000;
const SLOT_SQL = `SELECT slot_name, plugin, slot_type, active, active_pid, wal_status, restart_lsn::text AS restart_lsn,
  confirmed_flush_lsn::text AS confirmed_flush_lsn,
  pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::int8 AS retained,
  pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, confirmed_flush_lsn)::int8 AS lag
  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isInUse = (err: unknown) => (err as { code?: string })?.code === '55006';

/**
 * Change data capture from PostgreSQL (descriptor id `postgres.cdc`): a unit per published table, read from a logical
 * replication slot of its own with the built-in `pgoutput` plugin, over the replication protocol of `pg`
 * (docs/decisions/0015-postgres-cdc.md, docs/cdc.md).
 *
 * - **First run** (no checkpoint, or `mode: 'full'`): creates the unit's slot with an exported snapshot and reads the
 *   table inside that snapshot (rows with `_op: 'insert'` at the slot's consistent point); the checkpoint is the
 *   consistent point, so the stream starts exactly where the snapshot ends: no gap, no overlap. A slot left by a
 *   snapshot that never committed is dropped and created again.
 * - **Later runs** stream the slot from the checkpoint and drain whole transactions until caught up or a bound
 *   (`maxRows`, `maxBytes`, `maxWaitMs`) is reached, into change rows: the table's columns, then `_op`, `_lsn`,
 *   `_seq`, `_commit_ts`, `_unchanged` (TOASTed columns an update left as they were: never NULL in the target),
 *   `_old_key` (an update that moved the primary key). The checkpoint is an LSN.
 * - The slot's confirmed position moves only in {@link PostgresCdcSource.confirm} (after the sink committed and the
 *   checkpoint moved) and, at the start of a run, up to the stored checkpoint — so a crash anywhere re-reads from the
 *   slot and the sink's ledger drops what it has. Values are parsed exactly as `PostgresSource` parses them.
 * - A slot PostgreSQL invalidated (`wal_status = 'lost'`) or dropped fails the run with `checkpoint_invalid` (not
 *   retryable) naming the unit and the resync: run it once with `mode: 'full'` (and `disposition: 'replace'`).
 *
 * @example
 * ```ts
 * import { PostgresCdcSource, PostgresSink } from '@nucleus/ingestion/postgres';
 * const source = new PostgresCdcSource({
 *   connectionString: process.env.DATABASE_URL!,
 *   publication: 'shop',
 *   slot: 'nucleus',
 *   units: ['public.orders'],
 * });
 * // runUnit({ source, sink: new PostgresSink({ … }), disposition: 'merge', … }) applies inserts, updates and deletes
 * ```
 * @throws IngestError `config_invalid` for bad options; `read` throws `source_failed` (retryable for connection errors,
 * a slot still held by an ending walsender, and a transaction whose columns change after its first `batchRows` rows:
 * the next attempt holds it whole), `checkpoint_invalid` (lost or missing slot), `not_found`.
 * @public
 */
export class PostgresCdcSource implements SourceEndpoint<PostgresCdcCheckpoint> {
  readonly descriptor: EndpointDescriptor<PostgresCdcSourceConfig> = postgresCdcSourceDescriptor;
  readonly #config: PostgresCdcSourceConfig;
  readonly #units = new Map<string, Unit>();
  readonly #pool: pg.Pool;
  /** Per unit: an empty run that read from `from` up to `to` (confirmed with the unchanged checkpoint). */
  readonly #scanned = new Map<string, { from: string; to: bigint }>();
  /** `<slot>@<commit LSN>` of transactions to stage whole: they change the table's columns after a batch's worth. */
  readonly #holdWhole = new Set<string>();
  /** Per slot: the exported snapshot of a planned snapshot this instance holds. */
  readonly #snapshots = new Map<string, HeldSnapshot>();
  #closed = false;

  constructor(options: PostgresCdcSourceOptions) {
    const parsed = postgresCdcSourceConfigSchema.safeParse(options);
    if (!parsed.success) throw configInvalid('Invalid PostgresCdcSource options', parsed.error.issues);
    this.#config = parsed.data;
    const c = this.#config;
    registerUrlPassword(c.connectionString);
    const entries: Array<[string, PostgresCdcUnitConfig]> = Array.isArray(c.units)
      ? c.units.map((id) => [id, {}])
      : Object.entries(c.units);
    for (const [unitId, u] of entries) {
      const table = parseTableName(unitId);
      this.#units.set(unitId, {
        unitId,
        table,
        slot: u.slot ?? slotName(c.slot, unitId, table),
        ...(u.slot && { explicitSlot: u.slot }),
        publications: [u.publication ?? c.publication],
      });
    }
    this.#pool = new pg.Pool({ connectionString: c.connectionString, max: POOL_MAX });
    this.#pool.on('error', () => {});
  }

  /**
   * The replication slot of a unit, for the sink `sinkId` (each sink of a unit reads a slot of its own: a slot is
   * confirmed up to one checkpoint). @throws IngestError `not_found`
   */
  slotOf(unitId: string, sinkId?: string): string {
    return this.#unit(unitId, sinkId).slot;
  }

  /** The units, with the table's columns and the change fields as schema. */
  async collectMetadata(_ctx?: IngestionContext): Promise<UnitMetadata[]> {
    return this.#sql('collecting metadata', async (c) => {
      const out: UnitMetadata[] = [];
      for (const u of this.#units.values()) {
        const info = await describeTable(c, u.table);
        out.push({
          unitId: u.unitId,
          kind: 'table',
          title: formatTableName(u.table),
          ...(info && { schema: changeSchema(recordSchema(info.columns, info.primaryKey)) }),
          capabilities: ['metadata.preview', 'ingest.full', 'ingest.incremental'],
        });
      }
      return out;
    });
  }

  /**
   * A few rows of a unit's table as change rows (`_op: 'insert'`), read directly: no slot is created or touched.
   * @throws IngestError `not_found`, `source_failed`
   */
  async preview(
    req: { unitId: string; limit: number },
    _ctx?: IngestionContext,
  ): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    this.#open();
    const unit = this.#unit(req.unitId);
    return this.#sql(`previewing ${JSON.stringify(unit.unitId)}`, async (c) => {
      const info = await describeTable(c, unit.table);
      if (!info)
        throw new IngestError('not_found', `PostgresCdcSource: table ${formatTableName(unit.table)} does not exist`);
      const names = info.columns.map((col) => col.name);
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      try {
        await c.query(READ_SETTINGS);
        const res = await c.query({
          text: `SELECT ${names.map((n) => quoteIdentifier(n)).join(', ')} FROM ${qualifiedName(unit.table)} LIMIT ${Math.max(0, Math.floor(req.limit))}`,
          rowMode: 'array',
          types: createTypeParsers(info.columns),
        });
        const rows = (res.rows as Value[][]).map((v) =>
          Object.assign(buildRow(names, v), meta('insert', 0n, 0, null, null, null)),
        );
        return { rows, schema: changeSchema(recordSchema(info.columns, info.primaryKey)) };
      } finally {
        await c.query('COMMIT').catch(() => {});
      }
    });
  }

  /** @throws IngestError `not_found` for a unit the source was not configured with */
  async checkUnit(unitId: string): Promise<void> {
    this.#unit(unitId);
  }

  /**
   * Read a unit: a slice of a planned snapshot (`slice`), the whole snapshot in one read when there is no checkpoint
   * and no slice, else the changes after the checkpoint, up to the run's bounds.
   * @throws IngestError `source_failed`, `checkpoint_invalid`, `config_invalid` (wal_level, publication), `aborted`
   */
  async *read(
    req: ReadRequest<PostgresCdcCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<PostgresCdcCheckpoint>> {
    this.#open();
    const unit = this.#unit(req.unitId, ctx?.sinkId);
    const what = `PostgresCdcSource.read of ${JSON.stringify(unit.unitId)}${req.slice ? ` (slice ${req.slice.index})` : ''}`;
    try {
      if (req.slice) yield* this.#snapshotSlice(unit, { ...req, slice: req.slice }, ctx, what);
      else if (req.checkpoint == null) yield* this.#snapshot(unit, ctx, what);
      else yield* this.#stream(unit, this.#checkpointLsn(unit, req.checkpoint), req.checkpoint.lsn, ctx, what);
    } catch (err) {
      throw this.#wrap(err, what, unit);
    }
  }

  /**
   * Plan the snapshot of a unit (no checkpoint, or `mode: 'full'`): drop a slot left by a snapshot that never
   * committed, create the slot with an exported snapshot (its replication connection stays open, idle, while the
   * slices are read), and split the table into primary-key ranges of about `hints.sliceMaxRows` rows in that snapshot
   * (the shared SQL planner, as `PostgresSource` plans). Each slice records the snapshot id and the consistent point;
   * the checkpoint is the consistent point. A streaming run (with a checkpoint) is not planned: `undefined`.
   * @throws IngestError `source_failed`, `config_invalid` (wal_level, publication), `not_found`
   */
  async plan(
    req: ReadRequest<PostgresCdcCheckpoint>,
    ctx: IngestionContext,
  ): Promise<ExportPlan<PostgresCdcCheckpoint> | undefined> {
    this.#open();
    const unit = this.#unit(req.unitId, ctx?.sinkId);
    if (req.checkpoint != null) return undefined;
    const what = `PostgresCdcSource.plan of ${JSON.stringify(unit.unitId)}`;
    let held: HeldSnapshot | undefined;
    try {
      await this.#release(unit.slot);
      await this.#sqlRaw(async (client) => {
        await this.#checkSetup(client, unit);
        if ((await client.query(SLOT_SQL, [unit.slot])).rows[0]) {
          ctx.logger?.warn?.(
            `${what}: no checkpoint, dropping slot ${unit.slot} to snapshot again (it was created by a run that did not commit, or a full resync was asked)`,
            { slot: unit.slot },
          );
          await dropSlot(client, unit.slot);
        }
      });
      const repl = await ReplicationConnection.open(this.#config.connectionString);
      let created: Awaited<ReturnType<ReplicationConnection['createSlot']>>;
      try {
        created = await repl.createSlot(unit.slot);
      } catch (err) {
        await repl.close();
        throw err;
      }
      held = {
        slot: unit.slot,
        id: created.snapshotName,
        lsn: created.consistentPoint,
        repl,
        reader: new SnapshotSlices(this.#pool, created.snapshotName),
        pending: new Set(),
        active: 0,
      };
      this.#snapshots.set(unit.slot, held);
      const p = await held.reader.plan({ unitId: unit.unitId, mode: 'full', checkpoint: null, hints: req.hints }, ctx);
      for (const s of p.slices) held.pending.add(s.index);
      this.#idle(held);
      const { id, lsn } = held;
      ctx.logger?.info?.(`${what}: snapshot ${id} at ${lsn} planned in ${p.slices.length} slice(s)`, {
        slot: unit.slot,
        snapshot: id,
        lsn,
        slices: p.slices.length,
      });
      return {
        slices: p.slices.map((s) => ({
          index: s.index,
          bounds: { snapshot: id, lsn, ...(s.bounds !== undefined && { slice: s.bounds }) },
        })),
        checkpoint: { v: 1, slot: unit.slot, lsn },
        ...(p.schema && { schema: changeSchema(p.schema) }),
        ...(p.estimatedRows !== undefined && { estimatedRows: p.estimatedRows }),
      };
    } catch (err) {
      if (held) await this.#release(unit.slot);
      throw this.#wrap(err, what, unit);
    }
  }

  /**
   * Whether this instance still holds the exported snapshot a recorded snapshot plan was made in (the pipeline asks
   * before a resumed run exports the rest of a plan): an exported snapshot dies with the replication connection that
   * created the slot, so another process — or this one after the snapshot was let go — answers `false`, and the run
   * plans again (a new slot, a new snapshot) into an emptied session.
   */
  async planValid(
    req: { unitId: string; slices: SliceSpec[]; checkpoint: PostgresCdcCheckpoint | null },
    ctx?: IngestionContext,
  ): Promise<boolean> {
    this.#open();
    const unit = this.#unit(req.unitId, ctx?.sinkId);
    const b = snapshotBounds(req.slices[0]);
    if (!b) return true;
    const held = this.#snapshots.get(unit.slot);
    return !!held && held.id === b.snapshot && held.repl.open;
  }

  /**
   * Pass-through (codec `pg-copy`, see `pgCopyCodec`): one slice of a planned snapshot as the bytes of
   * `COPY (SELECT <columns>, 'insert' AS _op, <consistent point> AS _lsn, … FROM <the slice>) TO STDOUT` inside the
   * exported snapshot: the change fields come from the server, no row objects. `undefined` for another codec or a
   * slice that is not a snapshot's (the pipeline then uses `read`).
   * @throws IngestError `source_failed` (retryable for connection errors and a snapshot that is gone), `aborted`
   */
  readEncoded(
    codec: string,
    req: ReadRequest<PostgresCdcCheckpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<EncodedBatch> | undefined {
    if (codec !== PG_COPY_CODEC_ID) return undefined;
    const b = snapshotBounds(req.slice);
    if (!b) return undefined;
    this.#open();
    const unit = this.#unit(req.unitId, ctx?.sinkId);
    const what = `PostgresCdcSource.readEncoded of ${JSON.stringify(unit.unitId)} (slice ${req.slice.index})`;
    const self = this;
    return (async function* () {
      const held = self.#holding(unit, b, what);
      self.#begin(held);
      let done = false;
      try {
        yield* held.reader.copyChanges(
          { ...innerRequest(unit.unitId, req.slice, b), ...(req.hints && { hints: req.hints }) },
          parseLsn(b.lsn)!,
          ctx,
          what,
        );
        done = true;
      } finally {
        await self.#end(held, req.slice.index, done);
      }
    })();
  }

  /**
   * Release the slot up to a committed checkpoint (`pg_replication_slot_advance`): called by `runUnit` after the sink
   * committed and the checkpoint moved. After an empty run, the slot also moves past what that run read (nothing of
   * the unit was there).
   * @throws IngestError `source_failed` (the pipeline logs it; the next run releases again)
   */
  async confirm(req: { unitId: string; checkpoint: PostgresCdcCheckpoint | null }, ctx?: IngestionContext) {
    this.#open();
    const unit = this.#unit(req.unitId, ctx?.sinkId);
    if (!req.checkpoint) return;
    let lsn = this.#checkpointLsn(unit, req.checkpoint);
    const scanned = this.#scanned.get(unit.slot);
    this.#scanned.delete(unit.slot);
    if (scanned && scanned.from === req.checkpoint.lsn && scanned.to > lsn) lsn = scanned.to;
    try {
      await this.#advance(unit, lsn);
    } catch (err) {
      throw this.#wrap(err, `PostgresCdcSource.confirm of ${JSON.stringify(unit.unitId)}`, unit);
    }
  }

  /**
   * Each unit's slot (for the sink `sinkId`): whether it exists, its WAL status, retained WAL and lag in bytes.
   * @throws IngestError `source_failed`
   */
  async status(opts: { sinkId?: string } = {}): Promise<PostgresCdcSlotStatus[]> {
    this.#open();
    const warnAt = this.#config.lagWarnBytes ?? LAG_WARN_BYTES;
    return this.#sql('reading slot status', async (c) => {
      const out: PostgresCdcSlotStatus[] = [];
      for (const { unitId } of this.#units.values()) {
        const u = this.#unit(unitId, opts.sinkId);
        const r = (await c.query(SLOT_SQL, [u.slot])).rows[0];
        if (!r) {
          out.push({ unitId: u.unitId, slot: u.slot, exists: false });
          continue;
        }
        const retainedBytes = r.retained === null ? undefined : Number(r.retained);
        out.push({
          unitId: u.unitId,
          slot: u.slot,
          exists: true,
          walStatus: r.wal_status ?? undefined,
          active: r.active,
          restartLsn: r.restart_lsn ?? undefined,
          confirmedFlushLsn: r.confirmed_flush_lsn ?? undefined,
          retainedBytes,
          lagBytes: r.lag === null ? undefined : Number(r.lag),
          warning: r.wal_status === 'lost' || (retainedBytes ?? 0) > warnAt,
        });
      }
      return out;
    });
  }

  /**
   * Drop a unit's slot (when abandoning the unit, or to resync after it was lost). Only ever done when asked: the
   * unit's next run without a checkpoint (`mode: 'full'`) snapshots again. Returns false when there was no slot.
   * @throws IngestError `source_failed` (retryable while a walsender still holds the slot), `not_found`
   */
  async dropSlot(unitId: string, opts: { sinkId?: string } = {}): Promise<boolean> {
    this.#open();
    const unit = this.#unit(unitId, opts.sinkId);
    return this.#sql(`dropping slot ${unit.slot}`, (c) => dropSlot(c, unit.slot));
  }

  /** End the source's connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of [...this.#snapshots.keys()]) await this.#release(slot);
    await this.#pool.end().catch(() => {});
  }

  // ---- snapshot ----

  /** One slice of a planned snapshot as change rows (`_op: 'insert'` at the consistent point), in the held snapshot. */
  async *#snapshotSlice(
    unit: Unit,
    req: ReadRequest<PostgresCdcCheckpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
    what: string,
  ): AsyncIterable<SourceBatch<PostgresCdcCheckpoint>> {
    const b = snapshotBounds(req.slice);
    if (!b) {
      throw new IngestError(
        'source_failed',
        `${what}: slice ${req.slice.index} is not a slice of a planned snapshot (${JSON.stringify(req.slice.bounds ?? null).slice(0, 80)})`,
        { retryable: false, details: { unitId: unit.unitId, slice: req.slice.index } },
      );
    }
    const held = this.#holding(unit, b, what);
    this.#begin(held);
    const fields = { ...meta('insert', parseLsn(b.lsn)!, 0, null, null, null) };
    let done = false;
    try {
      const inner = { ...innerRequest(unit.unitId, req.slice, b), ...(req.hints && { hints: req.hints }) };
      for await (const batch of held.reader.read(inner, ctx)) {
        for (const row of batch.rows) Object.assign(row, fields);
        yield { rows: batch.rows, ...(batch.schema && { schema: changeSchema(batch.schema) }) };
      }
      done = true;
    } finally {
      await this.#end(held, req.slice.index, done);
    }
  }

  /**
   * The held snapshot a slice was planned in.
   * @throws IngestError `source_failed` (retryable: the resumed run plans again) when it is gone
   */
  #holding(unit: Unit, b: SnapshotBounds, what: string): HeldSnapshot {
    const held = this.#snapshots.get(unit.slot);
    if (held && held.id === b.snapshot && held.repl.open) return held;
    throw new IngestError(
      'source_failed',
      `${what}: the exported snapshot ${b.snapshot} this slice was planned in is gone (it lives only as long as the replication connection that created slot ${unit.slot}, in the process that planned it); the resumed run declares the plan void and snapshots again`,
      { retryable: true, details: { unitId: unit.unitId, slot: unit.slot, snapshot: b.snapshot } },
    );
  }

  #begin(held: HeldSnapshot): void {
    held.active++;
    if (held.timer) clearTimeout(held.timer);
    held.timer = undefined;
  }

  /** A slice read ended: once every slice of the plan was read to its end, the snapshot is let go. */
  async #end(held: HeldSnapshot, index: number, done: boolean): Promise<void> {
    held.active--;
    if (done) held.pending.delete(index);
    if (held.active > 0) return;
    if (held.pending.size === 0) await this.#release(held.slot, held);
    else this.#idle(held);
  }

  /** Let the held snapshot go after {@link SNAPSHOT_IDLE_MS} without a slice read. */
  #idle(held: HeldSnapshot): void {
    if (held.timer) clearTimeout(held.timer);
    held.timer = setTimeout(() => {
      if (held.active === 0) void this.#release(held.slot, held);
    }, SNAPSHOT_IDLE_MS);
    held.timer.unref?.();
  }

  /** Close the snapshot held for `slot` (only `which`, when given): the slot itself stays. */
  async #release(slot: string, which?: HeldSnapshot): Promise<void> {
    const held = this.#snapshots.get(slot);
    if (!held || (which && held !== which)) return;
    this.#snapshots.delete(slot);
    if (held.timer) clearTimeout(held.timer);
    await held.repl.close();
  }

  async *#snapshot(unit: Unit, ctx: IngestionContext, what: string): AsyncIterable<SourceBatch<PostgresCdcCheckpoint>> {
    await this.#release(unit.slot);
    const client = guardClient(await this.#pool.connect());
    let ok = false;
    let repl: ReplicationConnection | undefined;
    try {
      await this.#checkSetup(client, unit);
      const existing = (await client.query(SLOT_SQL, [unit.slot])).rows[0];
      if (existing) {
        // a slot without a committed checkpoint: left by a snapshot that did not finish, or a resync was asked
        ctx.logger?.warn?.(
          `${what}: no checkpoint, dropping slot ${unit.slot} to snapshot again (it was created by a run that did not commit, or a full resync was asked)`,
          { slot: unit.slot },
        );
        await dropSlot(client, unit.slot);
      }
      repl = await ReplicationConnection.open(this.#config.connectionString);
      const created = await repl.createSlot(unit.slot);
      const lsn = parseLsn(created.consistentPoint)!;
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await client.query(`SET TRANSACTION SNAPSHOT '${created.snapshotName.replace(/'/g, "''")}'`);
      await client.query(READ_SETTINGS);
      const info = await describeTable(client, unit.table);
      if (!info) throw new IngestError('not_found', `${what}: table ${formatTableName(unit.table)} does not exist`);
      const schema = changeSchema(recordSchema(info.columns, info.primaryKey));
      const names = info.columns.map((c) => c.name);
      const types = createTypeParsers(info.columns);
      await client.query(
        `DECLARE nucleus_cdc_snapshot NO SCROLL CURSOR FOR SELECT ${names.map((n) => quoteIdentifier(n)).join(', ')} FROM ${qualifiedName(unit.table)}`,
      );
      const batchRows = this.#config.batchRows ?? DEFAULTS.batchRows;
      const checkpoint: PostgresCdcCheckpoint = { v: 1, slot: unit.slot, lsn: created.consistentPoint };
      let first = true;
      for (;;) {
        throwIfAborted(ctx.signal, what);
        const res = await client.query({
          text: `FETCH FORWARD ${batchRows} FROM nucleus_cdc_snapshot`,
          rowMode: 'array',
          types,
        });
        const rows = (res.rows as Value[][]).map((values) => {
          const row = buildRow(names, values);
          row._op = 'insert';
          row._lsn = lsn;
          row._seq = 0;
          row._commit_ts = null;
          row._unchanged = null;
          row._old_key = null;
          return row;
        });
        const done = rows.length < batchRows;
        yield { rows, ...(first && { schema }), ...(done && { checkpoint }) };
        first = false;
        if (done) break;
      }
      await client.query('COMMIT');
      ok = true;
    } finally {
      await repl?.close();
      if (!ok) await client.query('ROLLBACK').catch(() => {});
      client.release(ok ? undefined : true);
    }
  }

  // ---- stream ----

  async *#stream(
    unit: Unit,
    start: bigint,
    startText: string,
    ctx: IngestionContext,
    what: string,
  ): AsyncIterable<SourceBatch<PostgresCdcCheckpoint>> {
    const c = this.#config;
    const maxRows = c.maxRows ?? DEFAULTS.maxRows;
    const maxBytes = c.maxBytes ?? DEFAULTS.maxBytes;
    const maxWaitMs = c.maxWaitMs ?? DEFAULTS.maxWaitMs;
    const batchRows = c.batchRows ?? DEFAULTS.batchRows;
    // a snapshot of this slot still held (its run committed, or was given up): the stream goes on past it
    await this.#release(unit.slot);

    // the slot must be there and valid; a heartbeat; the end to drain to; the catalog for value parsing
    const { target, info } = await this.#sql(what, async (client) => {
      const slot = (await client.query(SLOT_SQL, [unit.slot])).rows[0];
      if (!slot || slot.wal_status === 'lost') throw lostSlot(unit, slot ? 'lost' : 'missing');
      const retained = Number(slot.retained ?? 0);
      const warnAt = c.lagWarnBytes ?? LAG_WARN_BYTES;
      if (retained > warnAt) {
        const details = {
          unitId: unit.unitId,
          slot: unit.slot,
          retainedBytes: retained,
          lagBytes: Number(slot.lag ?? 0),
          thresholdBytes: warnAt,
          walStatus: slot.wal_status ?? null,
        };
        const message = `${what}: slot ${unit.slot} retains ${retained} bytes of WAL (over lagWarnBytes ${warnAt}); run the unit more often or with larger bounds, or drop the slot of an abandoned unit`;
        ctx.logger?.warn?.(message, details);
        emitWarning(ctx, 'cdc.retained_wal', message, details);
      }
      if (c.heartbeatTable) await heartbeat(client, c.heartbeatTable);
      const lsn = (await client.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn as string;
      const info = await describeTable(client, unit.table);
      return { target: parseLsn(lsn)!, info };
    });
    const catalog = new Map((info?.columns ?? []).map((col) => [col.name, col]));
    const catalogKey = info?.primaryKey ?? [];

    const repl = await this.#startReplication(unit, start, what);
    const started = Date.now();
    const relations = new Map<number, StreamRelation | null>();
    let schemaOfRows: RecordSchema | undefined;
    let schemaSent = false;
    const scannedRuns = this.#scanned;
    const holdWhole = this.#holdWhole;
    let total = 0;
    let bytes = 0;
    let received = start;
    /** Position after the last complete transaction (or a caught-up keepalive outside one). */
    let position = start;
    let emittedPosition = start;
    let inTxn = false;
    let txn: { lsn: bigint; ts: Timestamp; seq: number; rows: Row[]; flushed: boolean } | undefined;
    let out: Row[] = [];
    let lastPoll = 0;
    let idle = { at: -1n, since: Date.now() };
    const checkpointAt = (lsn: bigint): PostgresCdcCheckpoint => ({ v: 1, slot: unit.slot, lsn: formatLsn(lsn) });

    try {
      for (;;) {
        throwIfAborted(ctx.signal, what);
        const elapsed = Date.now() - started;
        if (!inTxn && (total >= maxRows || bytes >= maxBytes || elapsed >= maxWaitMs)) break;
        const now = Date.now();
        if (now - lastPoll >= POLL_MS) {
          lastPoll = now;
          repl.status(received, !inTxn);
        }
        const frame = await repl.next(POLL_MS);
        if (!frame) continue;
        if (frame.kind === 'keepalive') {
          if (frame.walEnd > received) received = frame.walEnd;
          if (frame.replyRequested) repl.status(received, false);
          // caught up: the server has sent everything up to the WAL position of the run's start, or it has had
          // nothing more to send for a while (the start position can lie past the last record: a page header)
          if (frame.walEnd !== idle.at) idle = { at: frame.walEnd, since: Date.now() };
          if (!inTxn && (frame.walEnd >= target || Date.now() - idle.since >= IDLE_MS)) {
            if (frame.walEnd > position) position = frame.walEnd;
            break;
          }
          continue;
        }
        idle = { at: -1n, since: Date.now() };
        bytes += frame.payload.length;
        let m: ReturnType<typeof decodePgOutput>;
        try {
          m = decodePgOutput(frame.payload);
        } catch (err) {
          throw new IngestError(
            'source_failed',
            `${what}: cannot decode a pgoutput message at ${formatLsn(frame.walStart)} (${frame.payload.length} bytes, ${frame.payload.subarray(0, 48).toString('hex')}): ${(err as Error).message}`,
            { cause: err, retryable: false, details: { unitId: unit.unitId, lsn: formatLsn(frame.walStart) } },
          );
        }
        switch (m.tag) {
          case 'begin':
            inTxn = true;
            txn = {
              lsn: m.finalLsn,
              ts: Timestamp.fromEpochMicros(m.commitTime + PG_EPOCH_MICROS, { zoned: true }),
              seq: 0,
              rows: [],
              flushed: false,
            };
            break;
          case 'relation': {
            if (m.schema !== unit.table.schema || m.name !== unit.table.name) {
              relations.set(m.relid, null);
              break;
            }
            const next = streamRelation(m.columns, catalog, catalogKey);
            relations.set(m.relid, next);
            if (schemaOfRows && !sameSchema(schemaOfRows, next.schema)) {
              // a run stages one schema: end it before this transaction when earlier transactions gave rows
              if (txn && !txn.flushed && (total > 0 || out.length > 0)) {
                ctx.logger?.info?.(`${what}: the table's columns changed; the next run reads on from here`, {
                  lsn: formatLsn(txn.lsn),
                });
                inTxn = false;
                txn = undefined;
                return yield* finish();
              }
              if (!schemaSent) {
                // the run's first transaction: it stages the new columns (the schema contract sees them), and its
                // rows written before the change get the columns they did not have as NULL
                schemaOfRows = next.schema;
                if (txn) txn.rows = txn.rows.map((row) => reshape(row, next.names));
                break;
              }
              // a transaction larger than a batch whose first rows were handed on with the earlier columns: read it
              // again, held whole this time (the retry starts at the checkpoint, before it; nothing was committed)
              if (txn) holdWhole.add(`${unit.slot}@${txn.lsn}`);
              throw new IngestError(
                'source_failed',
                `${what}: the table's columns changed inside a transaction larger than batchRows (${batchRows}) at ${txn ? formatLsn(txn.lsn) : '?'}; it is read again held whole, with its new columns`,
                { retryable: true, details: { unitId: unit.unitId, lsn: txn ? formatLsn(txn.lsn) : null } },
              );
            }
            break;
          }
          case 'insert':
          case 'update':
          case 'delete': {
            const r = relations.get(m.relid);
            if (!r || !txn) break;
            schemaOfRows ??= r.schema;
            txn.rows.push(changeRow(r, m, txn.lsn, txn.seq++, txn.ts));
            break;
          }
          case 'truncate': {
            if (!txn) break;
            for (const relid of m.relids) {
              const r = relations.get(relid);
              if (!r) continue;
              schemaOfRows ??= r.schema;
              const row = buildRow(
                r.columns.map((col) => col.name),
                r.columns.map(() => null),
              );
              Object.assign(row, meta('truncate', txn.lsn, txn.seq++, txn.ts, null, null));
              txn.rows.push(row);
            }
            break;
          }
          case 'commit': {
            inTxn = false;
            if (txn) holdWhole.delete(`${unit.slot}@${txn.lsn}`);
            if (m.endLsn > received) received = m.endLsn;
            position = m.endLsn;
            if (txn?.rows.length) {
              out.push(...txn.rows);
              total += txn.rows.length;
            }
            const flushedTxn = txn?.flushed ?? false;
            txn = undefined;
            if (out.length >= batchRows || (flushedTxn && out.length)) {
              yield batch(checkpointAt(position));
            }
            if (position >= target) return yield* finish();
            break;
          }
          default:
            break;
        }
        // a transaction larger than a batch: hand its rows on (the run then reads it to its commit)
        if (txn && txn.rows.length >= batchRows && !holdWhole.has(`${unit.slot}@${txn.lsn}`)) {
          if (out.length) yield batch(checkpointAt(position));
          out = txn.rows;
          txn.rows = [];
          txn.flushed = true;
          total += out.length;
          yield batch(undefined);
        }
      }
      yield* finish();
    } finally {
      await repl.close();
    }

    function batch(checkpoint: PostgresCdcCheckpoint | undefined): SourceBatch<PostgresCdcCheckpoint> {
      const rows = out;
      out = [];
      const b: SourceBatch<PostgresCdcCheckpoint> = { rows };
      if (checkpoint) {
        b.checkpoint = checkpoint;
        emittedPosition = parseLsn(checkpoint.lsn)!;
      }
      if (!schemaSent && schemaOfRows) {
        schemaSent = true;
        b.schema = schemaOfRows;
      }
      return b;
    }

    async function* finish(): AsyncGenerator<SourceBatch<PostgresCdcCheckpoint>, void> {
      if (total > 0) {
        if (out.length || position > emittedPosition) yield batch(checkpointAt(position));
      } else if (position > start) {
        scannedRuns.set(unit.slot, { from: startText, to: position });
      }
    }
  }

  async #startReplication(unit: Unit, start: bigint, what: string): Promise<ReplicationConnection> {
    // the walsender of a run that just ended may hold the slot for a moment
    for (let attempt = 1; ; attempt++) {
      const repl = await ReplicationConnection.open(this.#config.connectionString);
      try {
        await repl.start(unit.slot, start, unit.publications, start);
        return repl;
      } catch (err) {
        await repl.close();
        if (isInUse(err) && attempt < 20) {
          await sleep(250);
          continue;
        }
        if ((err as { code?: string })?.code === '42704') throw lostSlot(unit, 'missing');
        if (/can no longer get changes|has been invalidated|was invalidated/i.test(String((err as Error)?.message)))
          throw lostSlot(unit, 'lost');
        throw wrapPgError(err, 'source_failed', `${what}: cannot start replication from slot ${unit.slot}`, {
          unitId: unit.unitId,
          slot: unit.slot,
        });
      }
    }
  }

  // ---- helpers ----

  async #advance(unit: Unit, lsn: bigint): Promise<void> {
    await this.#sqlRaw(async (c) => {
      for (let attempt = 1; ; attempt++) {
        const slot = (await c.query(SLOT_SQL, [unit.slot])).rows[0];
        if (!slot || slot.wal_status === 'lost') return;
        const confirmed = parseLsn(slot.confirmed_flush_lsn ?? '0/0') ?? 0n;
        if (confirmed >= lsn) return;
        try {
          await c.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [unit.slot, formatLsn(lsn)]);
          return;
        } catch (err) {
          if (isInUse(err) && attempt < 20) {
            await sleep(250);
            continue;
          }
          throw err;
        }
      }
    });
  }

  async #checkSetup(c: pg.PoolClient, unit: Unit): Promise<void> {
    const level = (await c.query("SELECT current_setting('wal_level') AS v")).rows[0].v;
    if (level !== 'logical') {
      throw new IngestError(
        'config_invalid',
        `PostgresCdcSource: the server's wal_level is ${JSON.stringify(level)}; logical replication needs wal_level = logical (postgresql.conf, then a restart)`,
        { details: { unitId: unit.unitId, walLevel: level } },
      );
    }
    const pub = await c.query(
      'SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = ANY($1::text[]) AND schemaname = $2 AND tablename = $3',
      [unit.publications, unit.table.schema, unit.table.name],
    );
    if (!pub.rows.length) {
      throw new IngestError(
        'config_invalid',
        `PostgresCdcSource: table ${formatTableName(unit.table)} (unit ${JSON.stringify(unit.unitId)}) is not in publication ${unit.publications.join(', ')}: ALTER PUBLICATION … ADD TABLE ${formatTableName(unit.table)}`,
        { details: { unitId: unit.unitId, publications: unit.publications } },
      );
    }
  }

  #checkpointLsn(unit: Unit, cp: PostgresCdcCheckpoint): bigint {
    const lsn = typeof cp?.lsn === 'string' ? parseLsn(cp.lsn) : undefined;
    if (cp?.v !== 1 || lsn === undefined) {
      throw new IngestError(
        'checkpoint_invalid',
        `PostgresCdcSource: the checkpoint of unit ${JSON.stringify(unit.unitId)} is not a CDC checkpoint (${JSON.stringify(cp).slice(0, 80)}); resync with mode 'full'`,
        { details: { unitId: unit.unitId } },
      );
    }
    if (cp.slot !== unit.slot) {
      throw new IngestError(
        'checkpoint_invalid',
        `PostgresCdcSource: the checkpoint of unit ${JSON.stringify(unit.unitId)} belongs to slot ${cp.slot}, the unit now reads slot ${unit.slot}; resync with mode 'full' (snapshots into the new slot) or configure the old slot`,
        { details: { unitId: unit.unitId, slot: unit.slot, checkpointSlot: cp.slot } },
      );
    }
    return lsn;
  }

  #unit(unitId: string, sinkId?: string): Unit {
    const u = this.#units.get(unitId);
    if (!u) {
      throw new IngestError(
        'not_found',
        `PostgresCdcSource has no unit ${JSON.stringify(unitId)} (units: ${[...this.#units.keys()].join(', ')})`,
        { details: { unitId } },
      );
    }
    if (u.explicitSlot || !sinkId) return u;
    return { ...u, slot: slotName(this.#config.slot, unitId, u.table, sinkId) };
  }

  #open(): void {
    if (this.#closed) throw new IngestError('config_invalid', 'PostgresCdcSource already closed');
  }

  async #sqlRaw<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = guardClient(await this.#pool.connect());
    let healthy = false;
    try {
      const r = await fn(c);
      healthy = true;
      return r;
    } finally {
      c.release(healthy ? undefined : true);
    }
  }

  async #sql<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await this.#sqlRaw(fn);
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapPgError(err, 'source_failed', `PostgresCdcSource: ${what} failed`, {});
    }
  }

  #wrap(err: unknown, what: string, unit: Unit): unknown {
    if (IngestError.is(err)) return err;
    const e = wrapPgError(err, 'source_failed', `${what} failed`, { unitId: unit.unitId, slot: unit.slot });
    // a slot held by a walsender that is ending, or a replication connection that dropped: worth a retry
    if (isInUse(err)) return new IngestError('source_failed', e.message, { cause: err, retryable: true });
    return e;
  }
}

/** Report a `source.warning` event through the run's context (a listener's failure never fails the run). */
function emitWarning(ctx: IngestionContext, code: string, message: string, details: Record<string, Json>): void {
  try {
    ctx.emit?.({
      type: 'source.warning',
      at: new Date().toISOString(),
      runId: ctx.runId,
      workspaceId: ctx.workspaceId,
      endpointId: ctx.endpointId,
      unitId: ctx.unitId,
      ...(ctx.sinkId !== undefined ? { sinkId: ctx.sinkId } : {}),
      code,
      message,
      details,
    });
  } catch {
    // the pipeline's emit already guards its listener; a context of another host may not
  }
}

/** The non-retryable error of a slot that cannot be resumed, naming the unit and the resync path. */
function lostSlot(unit: Unit, why: 'lost' | 'missing'): IngestError {
  const state =
    why === 'lost'
      ? 'was invalidated by PostgreSQL (wal_status = lost: it fell behind max_slot_wal_keep_size); the changes since its checkpoint are gone'
      : 'does not exist (dropped?); the changes since the checkpoint cannot be read';
  return new IngestError(
    'checkpoint_invalid',
    `PostgresCdcSource: unit ${JSON.stringify(unit.unitId)}: replication slot ${unit.slot} ${state}. Resync: run the unit once with mode 'full' and disposition 'replace' (drops the slot, creates it again and snapshots the table), or \`nucleus-ingest cdc drop-slot\` and reset the unit's checkpoint`,
    { retryable: false, details: { unitId: unit.unitId, slot: unit.slot, walStatus: why } },
  );
}

async function dropSlot(c: pg.PoolClient, slot: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await c.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      return r.rows.length > 0;
    } catch (err) {
      if (isInUse(err) && attempt < 20) {
        await sleep(250);
        continue;
      }
      throw err;
    }
  }
}

/** Write the heartbeat row (creating the table when missing). */
async function heartbeat(c: pg.PoolClient, table: string): Promise<void> {
  const t = qualifiedName(parseTableName(table));
  await c.query(`CREATE TABLE IF NOT EXISTS ${t} (id int PRIMARY KEY, beat timestamptz NOT NULL)`).catch(() => {});
  await c.query(
    `INSERT INTO ${t} (id, beat) VALUES (1, clock_timestamp()) ON CONFLICT (id) DO UPDATE SET beat = EXCLUDED.beat`,
  );
}

/**
 * A slot name of at most 63 bytes: the base, the table's name (as far as it fits a slot name) and a short hash of the
 * unit id and the sink id (each sink of a unit has its own slot).
 */
export function slotName(base: string, unitId: string, table: TableName, sinkId?: string): string {
  const hash = createHash('sha256')
    .update(sinkId ? `${unitId}\u0000${sinkId}` : unitId)
    .digest('hex')
    .slice(0, 8);
  const name = table.name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63 - base.length - hash.length - 2);
  return `${base}_${name}_${hash}`;
}

function buildRow(names: string[], values: readonly Value[]): Row {
  const row: Row = {};
  for (let i = 0; i < names.length; i++) {
    if (names[i] === '__proto__')
      Object.defineProperty(row, names[i], { value: values[i], enumerable: true, writable: true, configurable: true });
    else row[names[i]] = values[i];
  }
  return row;
}

function meta(op: string, lsn: bigint, seq: number, ts: Timestamp | null, unchanged: string[] | null, oldKey: unknown) {
  return {
    _op: op,
    _lsn: lsn,
    _seq: seq,
    _commit_ts: ts,
    _unchanged: unchanged?.length ? new JsonText(JSON.stringify(unchanged)) : null,
    _old_key: oldKey ? new JsonText(JSON.stringify(oldKey)) : null,
  };
}

function streamRelation(
  columns: RelationColumn[],
  catalog: Map<string, ColumnInfo>,
  catalogKey: string[],
): StreamRelation {
  const known = columns.map((c) => catalog.get(c.name));
  const types = createTypeParsers(known.filter((c): c is ColumnInfo => !!c));
  const parse = columns.map((c, i) => {
    const info = known[i];
    return types.getTypeParser(info ? info.typid : c.typeOid, 'text') as (t: string) => Value;
  });
  const fields: FieldSchema[] = columns.map(
    (c, i) => (known[i] ? fieldSchema(known[i]!) : { name: c.name, type: 'string', nullable: true }) as FieldSchema,
  );
  const names = columns.map((c) => c.name);
  const pk = catalogKey.length && catalogKey.every((k) => names.includes(k)) ? catalogKey : [];
  const key = pk.length
    ? pk.map((k) => names.indexOf(k))
    : columns.flatMap((c, i) => (c.key && columns.some((x) => !x.key) ? [i] : []));
  const schema = changeSchema({ fields, ...(pk.length && { primaryKey: [...pk] }) });
  return { columns, names, parse, schema, key };
}

/** A change row with the columns `names` (a column it lacks is NULL, one not in `names` is left out), then its change fields. */
function reshape(row: Row, names: string[]): Row {
  const out = buildRow(
    names,
    names.map((n) => (Object.hasOwn(row, n) ? row[n] : null)),
  );
  for (const k of CHANGE_FIELDS) out[k] = row[k];
  return out;
}

function sameSchema(a: RecordSchema, b: RecordSchema): boolean {
  return (
    a.fields.length === b.fields.length &&
    a.fields.every((f, i) => f.name === b.fields[i].name && f.native?.type === b.fields[i].native?.type)
  );
}

function changeRow(
  r: StreamRelation,
  m:
    | { tag: 'insert'; row: TupleValue[] }
    | { tag: 'update'; row: TupleValue[]; old?: TupleValue[] }
    | { tag: 'delete'; old: TupleValue[] },
  lsn: bigint,
  seq: number,
  ts: Timestamp,
): Row {
  const tuple = m.tag === 'delete' ? m.old : m.row;
  const names = r.names;
  const values: Value[] = new Array(names.length);
  const unchanged: string[] = [];
  for (let i = 0; i < names.length; i++) {
    const v = tuple[i];
    if (v === UNCHANGED) {
      values[i] = null;
      unchanged.push(names[i]);
    } else values[i] = v === null || v === undefined ? null : r.parse[i](v);
  }
  let oldKey: Record<string, string | null> | undefined;
  if (m.tag === 'update' && m.old && r.key.length) {
    const old = m.old;
    const changed = r.key.some((i) => old[i] !== UNCHANGED && old[i] !== tuple[i]);
    if (changed) oldKey = Object.fromEntries(r.key.map((i) => [names[i], old[i] as string | null]));
  }
  const row = buildRow(names, values);
  Object.assign(row, meta(m.tag, lsn, seq, ts, unchanged, oldKey));
  return row;
}

/** The bounds of a planned snapshot's slice, or undefined for any other slice. */
function snapshotBounds(slice: SliceSpec | undefined): SnapshotBounds | undefined {
  const b = slice?.bounds as Partial<SnapshotBounds> | undefined;
  return b && typeof b === 'object' && typeof b.snapshot === 'string' && typeof b.lsn === 'string'
    ? (b as SnapshotBounds)
    : undefined;
}

/** The request of the shared SQL source for one snapshot slice (its own bounds). */
function innerRequest(unitId: string, slice: SliceSpec, b: SnapshotBounds) {
  return {
    unitId,
    mode: 'full' as const,
    checkpoint: null,
    slice: { index: slice.index, ...(b.slice !== undefined && { bounds: b.slice }) },
  };
}
