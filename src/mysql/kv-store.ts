import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { z } from 'zod';
import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { assertKvKey, kvConflict, kvPutOptions } from '../kv/kv-common.js';
import { isMySqlConnectionError } from './errors.js';
import { assertMySqlIdentifier } from './identifiers.js';

/** Options of {@link MySqlKvStore}. @public */
export interface MySqlKvStoreOptions {
  /** A kysely instance on `MysqlDialect` (a `mysql2` pool); MySQL 8 and MariaDB 10.6+ both work. */
  db: Kysely<any>;
  /** @defaultValue 'kv_entries' */
  table?: string;
  /** Database of the table; the connection's default database when absent. */
  database?: string;
  /** Rows fetched per round trip by `list`. @defaultValue 500 */
  listPageSize?: number;
}

const optionsSchema = z.object({
  db: z.custom<Kysely<any>>(
    (v) => v != null && typeof v === 'object' && typeof (v as any).executeQuery === 'function',
    { error: 'Expected `db` to be a Kysely instance' },
  ),
  table: z.string().min(1).optional(),
  database: z.string().min(1).optional(),
  listPageSize: z.number().int().positive().max(100_000).optional(),
});

/** Length limits of the key columns (bytes of UTF-8); the primary key stays under InnoDB's 3072-byte limit. */
const LIMITS = { namespace: 255, scopeId: 255, key: 1024 } as const;

interface RawEntry {
  namespace: string | Uint8Array;
  scope_id: string | Uint8Array;
  key: string | Uint8Array;
  value_text: string | Uint8Array;
  version_text: string | number | bigint;
  updated_ms: string | number | bigint;
  expires_ms: string | number | bigint | null;
  live?: number | string | bigint;
}

/** Errors after which the whole compare-and-set transaction is simply run again (it re-reads the row). */
const RETRY_ERRNO = new Set([1062, 1213, 1205]);

/**
 * A {@link KvStore} on MySQL or MariaDB: versioned entries in one InnoDB table, on an injected kysely instance.
 *
 * Every write is one short `READ COMMITTED` transaction that locks the key's row (`SELECT … FOR UPDATE`), decides
 * the compare-and-set, writes and reads the row back; a concurrent first insert of the same key (duplicate key,
 * deadlock) runs the transaction again, where it sees the winner. Expired and deleted entries stay as tombstones
 * (invisible to `get`/`list`, absent for `expectedVersion: null`) so versions never repeat and can fence writers;
 * {@link MySqlKvStore.purgeExpired} removes them. Keys are stored as `VARBINARY` (bytewise order, no trailing-space
 * padding, case-sensitive); times are UTC `DATETIME(3)` whatever the session time zone; values are JSON text.
 *
 * @example
 * ```ts
 * import { Kysely, MysqlDialect } from 'kysely';
 * import { createPool } from 'mysql2';
 * import { MySqlKvStore } from '@nucleus/ingestion/mysql';
 *
 * const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: createPool({ uri: 'mysql://app@db/ingest' }) }) });
 * const kv = new MySqlKvStore({ db });
 * await kv.migrate();
 * const e = await kv.put({ namespace: 'ingestion', scopeId: 'default', key: 'k' }, { at: 1 }, { expectedVersion: null });
 * ```
 * @throws IngestError `config_invalid` for bad options; methods throw `kv_conflict` (CAS lost) and `kv_failed` (database).
 * @public
 */
export class MySqlKvStore implements KvStore {
  readonly #db: Kysely<any>;
  readonly #table: RawBuilder<unknown>;
  readonly #tableName: string;
  readonly #pageSize: number;

  constructor(options: MySqlKvStoreOptions) {
    const res = optionsSchema.safeParse(options);
    if (!res.success) throw configInvalid('Invalid MySqlKvStore options', res.error.issues);
    const table = options.table ?? 'kv_entries';
    assertMySqlIdentifier(table, 'KV table name');
    if (options.database !== undefined) assertMySqlIdentifier(options.database, 'KV database name');
    this.#db = options.db;
    this.#tableName = table;
    this.#table = options.database === undefined ? sql.id(table) : sql.id(options.database, table);
    this.#pageSize = options.listPageSize ?? 500;
  }

  /**
   * Create the table (and its expiry index) when missing. Idempotent; safe to call from several processes.
   * @throws IngestError `kv_failed`
   */
  async migrate(): Promise<void> {
    await this.#run('migrate', undefined, async () => {
      await sql`CREATE TABLE IF NOT EXISTS ${this.#table} (
        namespace VARBINARY(${sql.raw(String(LIMITS.namespace))}) NOT NULL,
        scope_id VARBINARY(${sql.raw(String(LIMITS.scopeId))}) NOT NULL,
        \`key\` VARBINARY(${sql.raw(String(LIMITS.key))}) NOT NULL,
        value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        version BIGINT NOT NULL,
        created_at DATETIME(3) NOT NULL,
        updated_at DATETIME(3) NOT NULL,
        expires_at DATETIME(3) NULL,
        PRIMARY KEY (namespace, scope_id, \`key\`),
        KEY ${sql.id(`${this.#tableName.slice(0, 50)}_expires_idx`)} (expires_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`.execute(this.#db);
    });
  }

  /** The live entry, or `undefined` when absent, deleted or expired. @throws IngestError `kv_failed` */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    checkKey(key);
    const rows = await this.#run('get', key, () => this.#select(this.#db, key, false));
    const r = rows[0];
    return r && isLive(r) ? toEntry<T>(r) : undefined;
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
    const expires =
      ttlMs === undefined
        ? sql`NULL`
        : sql`UTC_TIMESTAMP(3) + INTERVAL ${sql.raw(String(Math.floor(ttlMs) * 1000))} MICROSECOND`;
    const t = this.#table;
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.#run('put', key, () =>
          this.#db
            .transaction()
            .setIsolationLevel('read committed')
            .execute(async (trx) => {
              const cur = (await this.#select(trx, key, true))[0];
              const live = cur !== undefined && isLive(cur);
              const version = cur === undefined ? 0 : Number(cur.version_text);
              if (
                (expectedVersion === null && live) ||
                (typeof expectedVersion === 'number' && (!live || version !== expectedVersion))
              )
                return { conflict: live ? version : undefined };
              if (cur === undefined) {
                await sql`INSERT INTO ${t} (namespace, scope_id, \`key\`, value, version, created_at, updated_at, expires_at)
                  VALUES (${key.namespace}, ${key.scopeId}, ${key.key}, ${text}, 1, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), ${expires})`.execute(
                  trx,
                );
              } else {
                await sql`UPDATE ${t} SET value = ${text}, version = version + 1,
                    created_at = ${live ? sql`created_at` : sql`UTC_TIMESTAMP(3)`},
                    updated_at = UTC_TIMESTAMP(3), expires_at = ${expires}
                  WHERE namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND \`key\` = ${key.key}`.execute(
                  trx,
                );
              }
              const row = (await this.#select(trx, key, false))[0];
              return { entry: toEntry<T>(row) };
            }),
        );
        if (out.entry) return out.entry;
        throw kvConflict(key, expectedVersion, out.conflict);
      } catch (err) {
        const errno = (((err as IngestError)?.cause ?? err) as { errno?: number })?.errno;
        if (attempt < 10 && typeof errno === 'number' && RETRY_ERRNO.has(errno)) {
          await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * (attempt + 1)));
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Delete the live entry (with `expectedVersion`: only at that version). Returns whether a live entry was deleted.
   * The row stays as a tombstone so the next write continues the version sequence.
   * @throws IngestError `kv_failed`
   */
  async delete(key: KvKey, opts: { expectedVersion?: number } = {}): Promise<boolean> {
    checkKey(key);
    const guard = opts.expectedVersion === undefined ? sql`` : sql`AND version = ${opts.expectedVersion}`;
    const res = await this.#run('delete', key, () =>
      sql`UPDATE ${this.#table} SET value = 'null', expires_at = UTC_TIMESTAMP(3), updated_at = UTC_TIMESTAMP(3)
        WHERE namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND \`key\` = ${key.key} AND ${live()} ${guard}`.execute(
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
      const afterCond: RawBuilder<unknown> = after === null ? sql`TRUE` : sql`\`key\` > ${after}`;
      const res: { rows: RawEntry[] } = await this.#run('list', undefined, () =>
        sql<RawEntry>`SELECT ${columns()} FROM ${this.#table}
          WHERE namespace = ${prefix.namespace} AND scope_id = ${prefix.scopeId} AND \`key\` LIKE ${pattern} ESCAPE '!'
            AND ${afterCond} AND ${live()}
          ORDER BY \`key\` LIMIT ${sql.raw(String(this.#pageSize))}`.execute(this.#db),
      );
      for (const r of res.rows) yield toEntry(r);
      if (res.rows.length < this.#pageSize) return;
      after = text(res.rows[res.rows.length - 1].key);
    }
  }

  /**
   * Remove expired and deleted entries for good. After a purge a key's versions start again at 1, so keep
   * `olderThanMs` above the longest lease TTL when versions fence writers.
   * @returns the number of rows removed
   * @throws IngestError `kv_failed`
   */
  async purgeExpired(opts: { olderThanMs?: number } = {}): Promise<number> {
    const age = Math.max(0, Math.floor(opts.olderThanMs ?? 0)) * 1000;
    const res = await this.#run('purgeExpired', undefined, () =>
      sql`DELETE FROM ${this.#table} WHERE expires_at IS NOT NULL
        AND expires_at <= UTC_TIMESTAMP(3) - INTERVAL ${sql.raw(String(age))} MICROSECOND`.execute(this.#db),
    );
    return Number(res.numAffectedRows ?? 0);
  }

  async #select(db: Kysely<any> | Transaction<any>, key: KvKey, forUpdate: boolean): Promise<RawEntry[]> {
    const res = await sql<RawEntry>`SELECT ${columns()}, ${live()} AS live FROM ${this.#table}
      WHERE namespace = ${key.namespace} AND scope_id = ${key.scopeId} AND \`key\` = ${key.key}
      ${forUpdate ? sql`FOR UPDATE` : sql``}`.execute(db);
    return res.rows;
  }

  async #run<R>(op: string, key: KvKey | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (IngestError.is(err)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new IngestError(
        'kv_failed',
        `MySqlKvStore.${op}${key ? ` of ${JSON.stringify(key.key)}` : ''} failed: ${message}`,
        {
          cause: err,
          retryable: isMySqlConnectionError(err) || !(err as { errno?: number })?.errno,
          details: {
            table: this.#tableName,
            ...(key ? { namespace: key.namespace, scopeId: key.scopeId, key: key.key } : {}),
          },
        },
      );
    }
  }
}

/** The selected columns; times as epoch milliseconds (text), whatever the driver does with dates. */
function columns(): RawBuilder<unknown> {
  return sql`namespace, scope_id, \`key\`, value AS value_text, CAST(version AS CHAR) AS version_text,
    CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', updated_at) DIV 1000 AS CHAR) AS updated_ms,
    CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expires_at) DIV 1000 AS CHAR) AS expires_ms`;
}

function live(): RawBuilder<unknown> {
  return sql`(expires_at IS NULL OR expires_at > UTC_TIMESTAMP(3))`;
}

function isLive(r: RawEntry): boolean {
  return Number(r.live) === 1;
}

function escapeLike(s: string): string {
  return s.replace(/[!%_]/g, (c) => `!${c}`);
}

function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
}

function checkKey(key: KvKey): void {
  assertKvKey(key);
  for (const f of ['namespace', 'scopeId', 'key'] as const) {
    if (key[f].includes('\u0000'))
      throw new IngestError('config_invalid', `KV key \`${f}\` must not contain NUL characters`);
    const bytes = Buffer.byteLength(key[f], 'utf8');
    if (bytes > LIMITS[f])
      throw new IngestError(
        'config_invalid',
        `KV key \`${f}\` is ${bytes} bytes long; MySqlKvStore allows at most ${LIMITS[f]}`,
        { details: { field: f, bytes } },
      );
  }
}

function toEntry<T extends Json>(r: RawEntry): KvEntry<T> {
  const entry: KvEntry<T> = {
    namespace: text(r.namespace),
    scopeId: text(r.scope_id),
    key: text(r.key),
    value: JSON.parse(text(r.value_text)) as T,
    version: Number(r.version_text),
    updatedAt: new Date(Number(r.updated_ms)),
  };
  if (r.expires_ms !== null && r.expires_ms !== undefined) entry.expiresAt = new Date(Number(r.expires_ms));
  return entry;
}
