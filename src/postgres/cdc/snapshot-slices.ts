import type pg from 'pg';
import type { IngestionContext } from '../../contracts/context.js';
import type { EncodedBatch, ReadRequest, SliceSpec } from '../../contracts/source-endpoint.js';
import type { Json } from '../../contracts/values.js';
import { IngestError } from '../../errors/ingest-error.js';
import { changeSchema } from '../../sql/change-rows.js';
import { SqlSource } from '../../sql/source-base.js';
import type { SqlCheckpoint } from '../../sql/source-config.js';
import type { ColumnInfo } from '../catalog.js';
import { copyOutSlice } from '../copy-pass-through.js';
import { postgresDialect } from '../dialect.js';
import { postgresSourceDialect, READ_SETTINGS } from '../source.js';
import type { PostgresSourceConfig } from '../source-config.js';
import { postgresCdcSourceDescriptor } from './cdc-config.js';

/** `SET TRANSACTION SNAPSHOT` of an exported snapshot (its id quoted as a literal). */
export const setSnapshot = (id: string) => `SET TRANSACTION SNAPSHOT '${id.replace(/'/g, "''")}'`;

/**
 * The planned slices of a CDC snapshot (docs/decisions/0015-postgres-cdc.md, amendment "planned snapshots"): the
 * shared SQL source — its planner (`planSlices`: primary-key ranges of about `sliceMaxRows`) and its slice reads —
 * over PostgreSQL's dialect, every transaction (`REPEATABLE READ, READ ONLY`) inside the slot's exported snapshot.
 * One instance per exported snapshot; its pool is the CDC source's (not ended here).
 * @internal
 */
export class SnapshotSlices extends SqlSource<ColumnInfo, pg.PoolClient> {
  readonly snapshot: string;

  constructor(pool: pg.Pool, snapshot: string) {
    const base = postgresSourceDialect({} as PostgresSourceConfig, { pool, owned: false });
    super(
      {
        ...base,
        async begin(client) {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
          await client.query(setSnapshot(snapshot));
          await client.query(READ_SETTINGS);
        },
      },
      {},
      { name: 'PostgresCdcSource', requireCursor: false, emptyBatch: false },
      postgresCdcSourceDescriptor,
    );
    this.snapshot = snapshot;
  }

  /**
   * One planned slice as COPY text with the change fields computed by the server (`'insert' AS _op`, the consistent
   * point as `_lsn`, `0 AS _seq`, NULL for the others): the `pg-copy` pass-through, no row objects.
   */
  copyChanges(
    req: ReadRequest<SqlCheckpoint> & { slice: SliceSpec },
    lsn: bigint,
    ctx: IngestionContext,
    what: string,
  ): AsyncIterable<EncodedBatch> {
    return copyOutSlice({
      what,
      signal: ctx.signal,
      settings: `${setSnapshot(this.snapshot)}; ${READ_SETTINGS}`,
      connect: () => this.open(ctx, what),
      prepare: async (client) => {
        const { unit, queries } = await this.prepareRead(client, req, ctx);
        const schema = changeSchema(unit.schema);
        const q = queries[0];
        if (!q) return { schema };
        const names = unit.columns.map((c) => postgresDialect.quote(c.name)).join(', ');
        const text = `SELECT ${names}, 'insert'::text AS _op, ${lsn.toString()}::int8 AS _lsn, 0::int4 AS _seq, NULL::timestamptz AS _commit_ts, NULL::jsonb AS _unchanged, NULL::jsonb AS _old_key FROM (${q.text}) AS nucleus_slice`;
        return { schema, select: { text, values: q.values } };
      },
      wrap: (err) =>
        IngestError.is(err)
          ? err
          : postgresDialect.wrap(err, 'source_failed', `${what} failed`, {
              unitId: req.unitId,
              slice: req.slice.index,
            } as Record<string, Json>),
    });
  }
}
