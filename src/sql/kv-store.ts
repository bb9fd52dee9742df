import { type Kysely, type RawBuilder, sql } from 'kysely';
import { z } from 'zod';
import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { isTransientError } from '../errors/transient.js';
import { assertKvKey, kvConflict, kvPutOptions } from '../kv/kv-common.js';
import type { SqlDialect } from './dialect.js';

/**
 * What the SQL KvStore needs of an engine beyond {@link SqlDialect}: its DDL, clock, column reads and error codes.
 * @internal
 */
export interface KvDialect extends SqlDialect {
  /** The public class, in messages (`PostgresKvStore`), and the option naming the table's schema. */
  readonly store: string;
  readonly schemaOption: 'schema' | 'database';
  /** The idempotent statements of `migrate()`: `table` in `schema` (when set), with the expiry index `index`. */
  ddl(table: RawBuilder<unknown>, schema: string | undefined, index: RawBuilder<unknown>): RawBuilder<unknown>[];
  /** The server clock (one value per statement), and the clock `ms` (an integer) milliseconds later. */
  readonly now: RawBuilder<unknown>;
  nowPlus(ms: number): RawBuilder<unknown>;
  /** A timestamp column as epoch milliseconds (an integer or its text). */
  epochMs(column: string): RawBuilder<unknown>;
  /** The `value` column as JSON text (never parsed by the driver). */
  readonly valueText: RawBuilder<unknown>;
  /** Whether `INSERT` / `UPDATE … RETURNING` gives the written row (else it is read back). */
  readonly returning: boolean;
  /**
   * Whether a `put` is ONE statement (`UPDATE … WHERE version = n RETURNING` / `INSERT … ON CONFLICT DO UPDATE …
   * RETURNING`) instead of a lock-decide-write transaction. One statement never holds a row lock across client round
   * trips, so a writer stopped mid-`put` (a paused lease holder renewing its lease) cannot keep others from the key.
   */
  readonly oneStatementPut?: boolean;
  /** UTF-8 byte limits of the key fields, when the key columns bound them. */
  readonly keyBytes?: Readonly<Record<'namespace' | 'scopeId' | 'key', number>>;
  /** The server's code of an error (SQLSTATE / errno); `undefined` for client-side failures (then retryable). */
  serverCode(err: unknown): string | number | undefined;
  /** Codes after which a write's transaction runs again: a concurrent first insert, a deadlock, a lock wait. */
  readonly rerunOn: ReadonlySet<string | number | undefined>;
  /** Codes a concurrent `migrate()` raises although the object now exists. */
  readonly migrateRaces: ReadonlySet<string | number | undefined>;
}

/** Options every SQL KvStore takes. @public */
export interface SqlKvStoreOptions {
  /** A kysely instance on the engine's dialect (`PostgresDialect` on a `pg` Pool, PGlite, `MysqlDialect`, …). */
  db: Kysely<any>;
  /** @defaultValue 'kv_entries' */
  table?: string;
  /** Rows fetched per round trip by `list`. @defaultValue 500 */
  listPageSize?: number;
}

/** A selected row, as the driver returns it: keys and values as text or bytes, numbers as text or numbers. */
type Row = Record<string, any>;

const KEY = sql.ref('key');
const RERUNS = 10;

/**
 * The {@link KvStore} of `PostgresKvStore` and `MySqlKvStore`: versioned entries in one table, on an injected kysely
 * instance.
 *
 * Every write is one short `READ COMMITTED` transaction that locks the key's row (`SELECT … FOR UPDATE`), decides the
 * compare-and-set, writes (`INSERT` for a new key, else `UPDATE`) and reads the row back; a concurrent first insert
 * of the same key (unique violation) or a deadlock runs the transaction again, where it sees the winner. Expired and
 * deleted entries stay as tombstones (invisible to `get`/`list`, absent for `expectedVersion: null`) so that versions
 * never repeat and can fence writers; {@link SqlKvStore.purgeExpired} removes them. Times are the server's clock.
 * @throws IngestError `config_invalid` for bad options; methods throw `kv_conflict` (CAS lost) and `kv_failed` (database).
 * @public
 */
export class SqlKvStore implements KvStore {
  readonly #d: KvDialect;
  readonly #db: Kysely<any>;
  readonly #tableName: string;
  readonly #schema: string | undefined;
  readonly #table: RawBuilder<unknown>;
  readonly #pageSize: number;
  readonly #live: RawBuilder<unknown>;
  readonly #columns: RawBuilder<unknown>;

  protected constructor(d: KvDialect, options: SqlKvStoreOptions & { schema?: string; database?: string }) {
    const name = z.string().min(1).optional();
    const res = z
      .object({
        db: z.custom((v) => typeof (v as Kysely<any>)?.executeQuery === 'function', {
          error: 'Expected `db` to be a Kysely instance',
        }),
        table: name,
        [d.schemaOption]: name,
        listPageSize: z.number().int().positive().max(100_000).optional(),
      })
      .safeParse(options);
    if (!res.success) throw configInvalid(`Invalid ${d.store} options`, res.error.issues);
    this.#d = d;
    this.#db = options.db;
    this.#tableName = options.table ?? 'kv_entries';
    d.quote(this.#tableName, 'KV table name');
    this.#schema = options[d.schemaOption];
    if (this.#schema !== undefined) d.quote(this.#schema, `KV ${d.schemaOption} name`);
    this.#table = this.#schema === undefined ? sql.id(this.#tableName) : sql.id(this.#schema, this.#tableName);
    this.#pageSize = options.listPageSize ?? 500;
    this.#live = sql`(expires_at IS NULL OR expires_at > ${d.now})`;
    this.#columns = sql`namespace, scope_id, ${KEY}, ${d.valueText} AS value_text, version,
      ${d.epochMs('updated_at')} AS updated_ms, ${d.epochMs('expires_at')} AS expires_ms,
      CASE WHEN ${this.#live} THEN 1 ELSE 0 END AS live`;
  }

  /**
   * Create the table (and its expiry index; with `schema`, the PostgreSQL schema) when missing. Idempotent; safe to
   * call from several processes at once.
   * @throws IngestError `kv_failed`
   */
  async migrate(): Promise<void> {
    const index = sql.id(`${this.#tableName.slice(0, 50)}_expires_idx`);
    for (const statement of this.#d.ddl(this.#table, this.#schema, index)) {
      await this.#run('migrate', undefined, () =>
        statement.execute(this.#db).catch((err) => {
          if (!this.#d.migrateRaces.has(this.#d.serverCode(err))) throw err;
        }),
      );
    }
  }

  /** The live entry at `key`, or undefined. @throws IngestError `kv_failed` */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    this.#check(key);
    const r = await this.#run('get', key, () => this.#row(this.#db, key));
    return r && Number(r.live) === 1 ? toEntry<T>(r) : undefined;
  }

  /**
   * Write `value` at `key`; `expectedVersion` makes it a compare-and-set (`null`: the key must not exist).
   * @throws IngestError `kv_conflict` when the compare-and-set loses; `kv_failed`
   */
  async put<T extends Json>(key: KvKey, value: T, opts: KvPutOptions = {}): Promise<KvEntry<T>> {
    this.#check(key);
    const { expectedVersion, ttlMs } = kvPutOptions(opts);
    const text = JSON.stringify(value);
    if (text === undefined)
      throw new IngestError('config_invalid', `Value of KV key ${JSON.stringify(key.key)} is not JSON`);
    const { now } = this.#d;
    const expires = ttlMs === undefined ? sql`NULL` : this.#d.nowPlus(ttlMs);
    if (this.#d.oneStatementPut) return this.#putOneStatement<T>(key, text, expectedVersion, expires);
    const write = () =>
      this.#db
        .transaction()
        .setIsolationLevel('read committed')
        .execute(async (trx) => {
          const cur = await this.#row(trx, key, sql`FOR UPDATE`);
          const live = cur !== undefined && Number(cur.live) === 1;
          const version = live ? Number(cur.version) : undefined;
          if (expectedVersion === null ? live : expectedVersion !== undefined && version !== expectedVersion)
            return { conflict: version };
          const change =
            cur === undefined
              ? sql`INSERT INTO ${this.#table} (namespace, scope_id, ${KEY}, value, version, created_at, updated_at, expires_at)
                  VALUES (${key.namespace}, ${key.scopeId}, ${key.key}, ${text}, 1, ${now}, ${now}, ${expires})`
              : sql`UPDATE ${this.#table} SET value = ${text}, version = version + 1,
                  created_at = ${live ? sql`created_at` : now}, updated_at = ${now}, expires_at = ${expires}
                  WHERE ${is(key)}`;
          const returning = this.#d.returning ? sql`RETURNING ${this.#columns}` : sql``;
          const written = await sql<Row>`${change} ${returning}`.execute(trx);
          return { entry: toEntry<T>(written.rows[0] ?? (await this.#row(trx, key))!) };
        });
    const out = await this.#run('put', key, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await write();
        } catch (err) {
          if (attempt >= RERUNS || !this.#d.rerunOn.has(this.#d.serverCode(err))) throw err;
          await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * attempt));
        }
      }
    });
    if (out.entry) return out.entry;
    throw kvConflict(key, expectedVersion, out.conflict);
  }

  /** `put` as one statement (see {@link KvDialect.oneStatementPut}); no row means the compare-and-set lost. */
  async #putOneStatement<T extends Json>(
    key: KvKey,
    text: string,
    expectedVersion: number | null | undefined,
    expires: RawBuilder<unknown>,
  ): Promise<KvEntry<T>> {
    const { now } = this.#d;
    const liveCur = sql`(cur.expires_at IS NULL OR cur.expires_at > ${now})`;
    const query =
      typeof expectedVersion === 'number'
        ? sql<Row>`UPDATE ${this.#table} SET value = ${text}, version = version + 1, updated_at = ${now},
            expires_at = ${expires} WHERE ${is(key)} AND version = ${expectedVersion} AND ${this.#live}
            RETURNING ${this.#columns}`
        : sql<Row>`INSERT INTO ${this.#table} AS cur (namespace, scope_id, ${KEY}, value, version, created_at,
            updated_at, expires_at) VALUES (${key.namespace}, ${key.scopeId}, ${key.key}, ${text}, 1, ${now}, ${now},
            ${expires}) ON CONFLICT (namespace, scope_id, ${KEY}) DO UPDATE SET value = EXCLUDED.value,
            version = cur.version + 1, created_at = CASE WHEN ${liveCur} THEN cur.created_at ELSE ${now} END,
            updated_at = ${now}, expires_at = EXCLUDED.expires_at
            ${expectedVersion === null ? sql`WHERE NOT ${liveCur}` : sql``} RETURNING ${this.#columns}`;
    const rows = await this.#run('put', key, async () => (await query.execute(this.#db)).rows);
    if (rows.length) return toEntry<T>(rows[0]);
    throw kvConflict(key, expectedVersion, (await this.get(key))?.version);
  }

  /** Delete `key` (optionally only at `expectedVersion`); the row stays as a tombstone, so versions continue. @throws IngestError `kv_failed` */
  async delete(key: KvKey, opts: { expectedVersion?: number } = {}): Promise<boolean> {
    this.#check(key);
    const { now } = this.#d;
    const version = opts.expectedVersion === undefined ? sql`` : sql`AND version = ${opts.expectedVersion}`;
    const res = await this.#run('delete', key, () =>
      sql`UPDATE ${this.#table} SET value = 'null', expires_at = ${now}, updated_at = ${now}
        WHERE ${is(key)} AND ${this.#live} ${version}`.execute(this.#db),
    );
    return Number(res.numAffectedRows ?? 0) > 0;
  }

  /** The live entries under a prefix, keys in bytewise order (LIKE wildcards matched literally). @throws IngestError `kv_failed` */
  async *list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry> {
    const pattern = `${(prefix.keyPrefix ?? '').replace(/[!%_]/g, (c) => `!${c}`)}%`;
    let after: string | undefined;
    while (true) {
      const where = sql`namespace = ${prefix.namespace} AND scope_id = ${prefix.scopeId} AND ${KEY} LIKE ${pattern}
        ESCAPE '!' AND ${after === undefined ? sql`TRUE` : sql`${KEY} > ${after}`} AND ${this.#live}`;
      const tail = sql`ORDER BY ${KEY} LIMIT ${sql.lit(this.#pageSize)}`;
      const rows = await this.#run('list', undefined, () => this.#select(this.#db, where, tail));
      for (const r of rows) yield toEntry(r);
      if (rows.length < this.#pageSize) return;
      after = text(rows[rows.length - 1].key);
    }
  }

  /**
   * Remove expired and deleted entries for good. After a purge a key's versions start again at 1, so keep
   * `olderThanMs` above the longest lease TTL when versions fence writers.
   * @returns the number of rows removed
   * @throws IngestError `kv_failed`
   */
  async purgeExpired(opts: { olderThanMs?: number } = {}): Promise<number> {
    const before = this.#d.nowPlus(-Math.max(0, Math.floor(opts.olderThanMs ?? 0)));
    const res = await this.#run('purgeExpired', undefined, () =>
      sql`DELETE FROM ${this.#table} WHERE expires_at IS NOT NULL AND expires_at <= ${before}`.execute(this.#db),
    );
    return Number(res.numAffectedRows ?? 0);
  }

  /** The key's row (live or a tombstone); `FOR UPDATE` locks it for the transaction `db`. */
  async #row(db: Kysely<any>, key: KvKey, lock = sql``): Promise<Row | undefined> {
    return (await this.#select(db, is(key), lock))[0];
  }

  async #select(db: Kysely<any>, where: RawBuilder<unknown>, tail: RawBuilder<unknown>): Promise<Row[]> {
    return (await sql<Row>`SELECT ${this.#columns} FROM ${this.#table} WHERE ${where} ${tail}`.execute(db)).rows;
  }

  #check(key: KvKey): void {
    assertKvKey(key);
    for (const f of ['namespace', 'scopeId', 'key'] as const) {
      if (key[f].includes('\u0000'))
        throw new IngestError('config_invalid', `KV key \`${f}\` must not contain NUL characters`);
      const [bytes, max] = [Buffer.byteLength(key[f], 'utf8'), this.#d.keyBytes?.[f] ?? Number.POSITIVE_INFINITY];
      if (bytes > max) {
        const message = `KV key \`${f}\` is ${bytes} bytes long; ${this.#d.store} allows at most ${max}`;
        throw new IngestError('config_invalid', message, { details: { field: f, bytes } });
      }
    }
  }

  async #run<R>(op: string, key: KvKey | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (IngestError.is(err)) throw err;
      const d = this.#d;
      const of = key ? ` of ${JSON.stringify(key.key)}` : '';
      throw new IngestError('kv_failed', `${d.store}.${op}${of} failed: ${err instanceof Error ? err.message : err}`, {
        cause: err,
        retryable: d.isTransient(err) || isTransientError(err),
        details: {
          table: this.#tableName,
          ...(key && { namespace: key.namespace, scopeId: key.scopeId, key: key.key }),
        },
      });
    }
  }
}

function is(key: KvKey): RawBuilder<unknown> {
  return sql`namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND ${KEY} = ${key.key}`;
}

/** A text column as the driver returns it (MySQL's VARBINARY columns come back as bytes). */
function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
}

function toEntry<T extends Json>(r: Row): KvEntry<T> {
  const entry: KvEntry<T> = {
    namespace: text(r.namespace),
    scopeId: text(r.scope_id),
    key: text(r.key),
    value: JSON.parse(text(r.value_text)) as T,
    version: Number(r.version),
    updatedAt: new Date(Number(r.updated_ms)),
  };
  if (r.expires_ms != null) entry.expiresAt = new Date(Number(r.expires_ms));
  return entry;
}
