import { type Kysely, type RawBuilder, sql } from 'kysely';
import { z } from 'zod';
import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { assertKvKey, kvConflict, kvPutOptions } from '../kv/kv-common.js';
import { assertIdentifier } from './identifiers.js';
import { isConnectionError } from './pg-errors.js';

/** Options of {@link PostgresKvStore}. @public */
export interface PostgresKvStoreOptions {
  /** Any kysely instance on a PostgreSQL dialect (a `pg` Pool through `PostgresDialect`, PGlite, …). */
  db: Kysely<any>;
  /** @defaultValue 'kv_entries' */
  table?: string;
  /** Schema of the table, created by `migrate()` when missing; unqualified (the connection's `search_path`) when absent. */
  schema?: string;
  /** Rows fetched per round trip by `list`. @defaultValue 500 */
  listPageSize?: number;
}

const optionsSchema = z.object({
  db: z.custom<Kysely<any>>(
    (v) => v != null && typeof v === 'object' && typeof (v as any).executeQuery === 'function',
    {
      error: 'Expected `db` to be a Kysely instance',
    },
  ),
  table: z.string().min(1).optional(),
  schema: z.string().min(1).optional(),
  listPageSize: z.number().int().positive().max(100_000).optional(),
});

interface RawEntry {
  namespace: string;
  scope_id: string;
  key: string;
  value_text: string;
  version_text: string;
  updated_ms: string;
  expires_ms: string | null;
}

/**
 * The canonical {@link KvStore}: versioned entries in one PostgreSQL table, on an injected kysely instance.
 *
 * Every compare-and-set is ONE statement (`INSERT … ON CONFLICT DO UPDATE … WHERE …` or `UPDATE … WHERE version = $n`),
 * so it holds under any number of concurrent writers. Expired and deleted entries are kept as tombstones (invisible
 * to `get`/`list`, absent for `expectedVersion: null`) so that versions never repeat and can serve as fencing tokens;
 * {@link PostgresKvStore.purgeExpired} removes them for good. Only the kysely query builder and `sql` templates are
 * used (values travel as text), so any kysely PostgreSQL dialect works.
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely';
 * import pg from 'pg';
 * import { PostgresKvStore } from '@nucleus/ingestion/postgres';
 *
 * const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) });
 * const kv = new PostgresKvStore({ db });
 * await kv.migrate();
 * const e = await kv.put({ namespace: 'ingestion', scopeId: 'default', key: 'k' }, { at: 1 }, { expectedVersion: null });
 * ```
 * @throws IngestError `config_invalid` for bad options; methods throw `kv_conflict` (CAS lost) and `kv_failed` (database).
 * @public
 */
export class PostgresKvStore implements KvStore {
  readonly #db: Kysely<any>;
  readonly #table: RawBuilder<unknown>;
  readonly #tableName: string;
  readonly #schemaName: string | undefined;
  readonly #pageSize: number;

  constructor(options: PostgresKvStoreOptions) {
    const res = optionsSchema.safeParse(options);
    if (!res.success) throw configInvalid('Invalid PostgresKvStore options', res.error.issues);
    const table = options.table ?? 'kv_entries';
    assertIdentifier(table, 'KV table name');
    if (options.schema !== undefined) assertIdentifier(options.schema, 'KV schema name');
    this.#db = options.db;
    this.#tableName = table;
    this.#schemaName = options.schema;
    this.#table = options.schema === undefined ? sql.id(table) : sql.id(options.schema, table);
    this.#pageSize = options.listPageSize ?? 500;
  }

  /**
   * Create the schema (when `schema` is set), the table and its expiry index when missing. Idempotent; safe to call
   * from several processes at once.
   * @throws IngestError `kv_failed`
   */
  async migrate(): Promise<void> {
    const t = this.#table;
    const statements = [
      ...(this.#schemaName === undefined ? [] : [sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(this.#schemaName)}`]),
      sql`CREATE TABLE IF NOT EXISTS ${t} (
        namespace text NOT NULL,
        scope_id text NOT NULL,
        key text COLLATE "C" NOT NULL,
        value jsonb NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NULL,
        PRIMARY KEY (namespace, scope_id, key)
      )`,
      sql`CREATE INDEX IF NOT EXISTS ${sql.id(`${this.#tableName.slice(0, 50)}_expires_idx`)} ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
    ];
    for (const statement of statements) {
      await this.#run('migrate', undefined, () => statement.execute(this.#db)).catch((err) => {
        // Two processes migrating at once can race on the catalog (unique_violation, duplicate_object,
        // duplicate_table, duplicate_schema): a concurrent CREATE … IF NOT EXISTS won, the object exists.
        const code = (err?.cause as { code?: string })?.code ?? (err as { code?: string })?.code;
        if (code === '23505' || code === '42710' || code === '42P07' || code === '42P06') return;
        throw err;
      });
    }
  }

  /** The live entry, or `undefined` when absent, deleted or expired. @throws IngestError `kv_failed` */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    checkKey(key);
    const rows = await this.#run('get', key, () =>
      this.#select(sql`namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND key = ${key.key} AND ${live()}`),
    );
    return rows.length ? toEntry<T>(rows[0]) : undefined;
  }

  /**
   * Write a value. With `expectedVersion` a number: only if the live entry has that version; `null`: only if there is
   * no live entry. Without it: upsert. The version continues from the key's last version, even across expiry.
   * @throws IngestError `kv_conflict` when the compare-and-set loses; `kv_failed` on database errors.
   */
  async put<T extends Json>(key: KvKey, value: T, opts: KvPutOptions = {}): Promise<KvEntry<T>> {
    checkKey(key);
    const { expectedVersion, ttlMs } = kvPutOptions(opts);
    const text = JSON.stringify(value);
    if (text === undefined)
      throw new IngestError('config_invalid', `Value of KV key ${JSON.stringify(key.key)} is not JSON`);
    const t = this.#table;
    const expires =
      ttlMs === undefined ? sql`NULL::timestamptz` : sql`now() + (${String(ttlMs)}::float8 * interval '1 millisecond')`;
    const returning = sql`RETURNING namespace, scope_id, key, value::text AS value_text, version::text AS version_text,
      floor(extract(epoch FROM updated_at) * 1000)::bigint::text AS updated_ms,
      floor(extract(epoch FROM expires_at) * 1000)::bigint::text AS expires_ms`;
    let query: RawBuilder<RawEntry>;
    if (typeof expectedVersion === 'number') {
      query = sql<RawEntry>`UPDATE ${t} SET value = ${text}::jsonb, version = version + 1, updated_at = now(), expires_at = ${expires}
        WHERE namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND key = ${key.key}
          AND version = ${String(expectedVersion)}::bigint AND ${live()}
        ${returning}`;
    } else {
      const guard = expectedVersion === null ? sql`WHERE NOT ${live(sql.id('cur'))}` : sql``;
      query = sql<RawEntry>`INSERT INTO ${t} AS cur (namespace, scope_id, key, value, version, created_at, updated_at, expires_at)
        VALUES (${key.namespace}, ${key.scopeId}, ${key.key}, ${text}::jsonb, 1, now(), now(), ${expires})
        ON CONFLICT (namespace, scope_id, key) DO UPDATE SET
          value = EXCLUDED.value,
          version = cur.version + 1,
          created_at = CASE WHEN ${live(sql.id('cur'))} THEN cur.created_at ELSE now() END,
          updated_at = now(),
          expires_at = EXCLUDED.expires_at
        ${guard}
        ${returning}`;
    }
    const rows = await this.#run('put', key, async () => (await query.execute(this.#db)).rows);
    if (!rows.length) {
      const current = await this.get(key);
      throw kvConflict(key, expectedVersion, current?.version);
    }
    return toEntry<T>(rows[0]);
  }

  /**
   * Delete the live entry (with `expectedVersion`: only at that version). Returns whether a live entry was deleted.
   * The row stays as a tombstone so the next write continues the version sequence.
   * @throws IngestError `kv_failed`
   */
  async delete(key: KvKey, opts: { expectedVersion?: number } = {}): Promise<boolean> {
    checkKey(key);
    const t = this.#table;
    const versionGuard =
      opts.expectedVersion === undefined ? sql`` : sql`AND version = ${String(opts.expectedVersion)}::bigint`;
    const res = await this.#run('delete', key, () =>
      sql`UPDATE ${t} SET value = 'null'::jsonb, expires_at = now(), updated_at = now()
        WHERE namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND key = ${key.key} AND ${live()} ${versionGuard}`.execute(
        this.#db,
      ),
    );
    return Number(res.numAffectedRows ?? 0) > 0;
  }

  /** Live entries whose key starts with `keyPrefix` (LIKE wildcards are matched literally), ordered by key (bytewise). @throws IngestError `kv_failed` */
  async *list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry> {
    const pattern = `${escapeLike(prefix.keyPrefix ?? '')}%`;
    let after: string | null = null;
    while (true) {
      const afterCond: RawBuilder<unknown> = after === null ? sql`TRUE` : sql`key > ${after}`;
      const rows = await this.#run('list', undefined, () =>
        this.#select(
          sql`namespace = ${prefix.namespace} AND scope_id = ${prefix.scopeId} AND key LIKE ${pattern} ESCAPE '\\' AND ${afterCond} AND ${live()}`,
          sql`ORDER BY key LIMIT ${this.#pageSize}`,
        ),
      );
      for (const r of rows) yield toEntry(r);
      if (rows.length < this.#pageSize) return;
      after = rows[rows.length - 1].key;
    }
  }

  /**
   * Remove expired and deleted entries for good. After a purge a key's versions start again at 1, so keep
   * `olderThanMs` above the longest lease TTL when versions fence writers.
   * @returns the number of rows removed
   * @throws IngestError `kv_failed`
   */
  async purgeExpired(opts: { olderThanMs?: number } = {}): Promise<number> {
    const t = this.#table;
    const age = String(opts.olderThanMs ?? 0);
    const res = await this.#run('purgeExpired', undefined, () =>
      sql`DELETE FROM ${t} WHERE expires_at IS NOT NULL AND expires_at <= now() - (${age}::float8 * interval '1 millisecond')`.execute(
        this.#db,
      ),
    );
    return Number(res.numAffectedRows ?? 0);
  }

  async #select(where: RawBuilder<unknown>, tail: RawBuilder<unknown> = sql``): Promise<RawEntry[]> {
    const res =
      await sql<RawEntry>`SELECT namespace, scope_id, key, value::text AS value_text, version::text AS version_text,
      floor(extract(epoch FROM updated_at) * 1000)::bigint::text AS updated_ms,
      floor(extract(epoch FROM expires_at) * 1000)::bigint::text AS expires_ms
      FROM ${this.#table} WHERE ${where} ${tail}`.execute(this.#db);
    return res.rows;
  }

  async #run<R>(op: string, key: KvKey | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (IngestError.is(err)) throw err;
      const text = err instanceof Error ? err.message : String(err);
      throw new IngestError(
        'kv_failed',
        `PostgresKvStore.${op}${key ? ` of ${JSON.stringify(key.key)}` : ''} failed: ${text}`,
        {
          cause: err,
          retryable: isConnectionError(err) || !(err as { code?: string })?.code,
          details: {
            table: this.#tableName,
            ...(key ? { namespace: key.namespace, scopeId: key.scopeId, key: key.key } : {}),
          },
        },
      );
    }
  }
}

/** `expires_at` is unset or in the future; optionally qualified with a table alias. */
function live(table?: RawBuilder<unknown>): RawBuilder<unknown> {
  const col = table ? sql`${table}.expires_at` : sql`expires_at`;
  return sql`(${col} IS NULL OR ${col} > now())`;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function checkKey(key: KvKey): void {
  assertKvKey(key);
  for (const f of ['namespace', 'scopeId', 'key'] as const) {
    if (key[f].includes('\u0000'))
      throw new IngestError('config_invalid', `KV key \`${f}\` must not contain NUL characters`);
  }
}

function toEntry<T extends Json>(r: RawEntry): KvEntry<T> {
  const entry: KvEntry<T> = {
    namespace: r.namespace,
    scopeId: r.scope_id,
    key: r.key,
    value: JSON.parse(r.value_text) as T,
    version: Number(r.version_text),
    updatedAt: new Date(Number(r.updated_ms)),
  };
  if (r.expires_ms !== null) entry.expiresAt = new Date(Number(r.expires_ms));
  return entry;
}
