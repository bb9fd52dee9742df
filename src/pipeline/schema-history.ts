import { createHash } from 'node:crypto';
import type { KvKey, KvStore } from '../contracts/kv-store.js';
import type { Disposition } from '../contracts/sink-endpoint.js';
import type { EncodedBatch, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { FieldSchema, Json, RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import {
  applyContract,
  type ContractDecision,
  contractError,
  filterRows,
  filtersRows,
  resolveSchemaContract,
  type SchemaContract,
} from '../schema/schema-contract.js';
import { diffSchemas, hasChanges, type SchemaDiff } from '../schema/schema-diff.js';
import { schemaHistoryKey } from './keys.js';
import type { RunContext } from './run-context.js';

/** Past versions kept beside the current one: the history stays small however often a table changes. */
export const SCHEMA_HISTORY_PAST = 5;

/** One recorded schema of a unit. @public */
export interface SchemaVersion {
  /** 1 for the first schema recorded, then +1 per change. */
  version: number;
  /** sha256 (hex, 16 digits) of the columns and primary key. */
  hash: string;
  /** When a committed run first loaded this schema. */
  seenAt: string;
  /** The run that recorded it. */
  runId: string;
  /** Columns in source order: name, type, nullability, type details and native type. */
  columns: Json;
  primaryKey?: string[];
}

/**
 * The JSON kept at `<checkpoint key>::schema`: the schema the unit's last committed run loaded, and up to
 * 5 earlier ones (newest first).
 * @public
 */
export interface SchemaHistory {
  current: SchemaVersion;
  past: SchemaVersion[];
  /** When the current version replaced the previous one, and what changed (absent for the first version). */
  lastChange?: { at: string; fromVersion: number; summary: string } | null;
}

/** The schema a version records. */
export function versionSchema(v: SchemaVersion): RecordSchema {
  return {
    fields: v.columns as unknown as FieldSchema[],
    ...(v.primaryKey ? { primaryKey: v.primaryKey } : {}),
  };
}

/** Hash of a schema: its columns (with types and nullability) and primary key, independent of key order. */
export function schemaHash(s: RecordSchema): string {
  const canon = (v: unknown): unknown =>
    v === null || typeof v !== 'object'
      ? v
      : Array.isArray(v)
        ? v.map(canon)
        : Object.fromEntries(
            Object.keys(v)
              .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          );
  const text = JSON.stringify(canon({ fields: s.fields, primaryKey: s.primaryKey ?? null }));
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** One line saying what changed. */
export function summarize(d: SchemaDiff): string {
  const parts: string[] = [];
  if (d.added.length) parts.push(`added ${d.added.map((f) => f.name).join(', ')}`);
  if (d.dropped.length) parts.push(`dropped ${d.dropped.join(', ')}`);
  for (const k of ['widened', 'narrowed', 'typeChanged'] as const)
    if (d[k].length) parts.push(`${k} ${d[k].map((c) => `${c.name} (${c.from} → ${c.to})`).join(', ')}`);
  if (d.nullabilityChanged.length)
    parts.push(
      `nullability ${d.nullabilityChanged.map((n) => `${n.name} ${n.nullable ? 'NULL' : 'NOT NULL'}`).join(', ')}`,
    );
  if (d.reordered) parts.push('reordered');
  return parts.join('; ');
}

/**
 * Read a unit's schema history (undefined before its first committed run with a schema).
 * @throws IngestError `kv_failed`
 * @public
 */
export async function readSchemaHistory(kv: KvStore, checkpoint: KvKey): Promise<SchemaHistory | undefined> {
  try {
    return (await kv.get(schemaHistoryKey(checkpoint)))?.value as SchemaHistory | undefined;
  } catch (err) {
    throw IngestError.wrap(err, 'kv_failed', `Could not read the schema history ${schemaHistoryKey(checkpoint).key}`);
  }
}

/**
 * Record `schema` as the unit's current schema when it differs from the recorded one (compare-and-set; a lost race
 * is left to the winner). Returns the history as it is now.
 * @internal
 */
export async function recordSchema(
  kv: KvStore,
  checkpoint: KvKey,
  schema: RecordSchema,
  runId: string,
): Promise<SchemaHistory> {
  const key = schemaHistoryKey(checkpoint);
  const entry = await kv.get(key);
  const was = entry?.value as SchemaHistory | undefined;
  const hash = schemaHash(schema);
  if (was && was.current.hash === hash) return was;
  const now = new Date().toISOString();
  const current: SchemaVersion = {
    version: (was?.current.version ?? 0) + 1,
    hash,
    seenAt: now,
    runId,
    columns: JSON.parse(JSON.stringify(schema.fields)) as Json,
    ...(schema.primaryKey ? { primaryKey: [...schema.primaryKey] } : {}),
  };
  const value: SchemaHistory = was
    ? {
        current,
        past: [was.current, ...was.past].slice(0, SCHEMA_HISTORY_PAST),
        lastChange: {
          at: now,
          fromVersion: was.current.version,
          summary: summarize(diffSchemas(versionSchema(was.current), schema)),
        },
      }
    : { current, past: [], lastChange: null };
  try {
    await kv.put(key, value as unknown as Json, { expectedVersion: entry ? entry.version : null });
  } catch (err) {
    if (!IngestError.is(err, 'kv_conflict')) throw err;
  }
  return value;
}

/**
 * The schema contract of one run, applied to the source schemas it sees: compares each with the recorded schema,
 * emits `schema.changed` once, refuses violations with `schema_conflict` before anything is staged, and gives the
 * schema to stage and the rows' filter.
 * @internal
 */
export class SchemaGate {
  #history: Promise<SchemaHistory | undefined> | undefined;
  readonly #decisions = new Map<string, Promise<ContractDecision>>();
  #last: ContractDecision | undefined;
  #emitted = false;

  constructor(
    readonly rc: RunContext,
    readonly contract: SchemaContract | undefined,
    readonly disposition: Disposition,
  ) {}

  /**
   * Read the unit's schema history now, before the source is read (a source and a KvStore on one pool must not wait
   * on each other's connection). @throws IngestError `kv_failed`
   */
  async prime(): Promise<void> {
    const { rc } = this;
    this.#history ??= readSchemaHistory(rc.opts.kv, rc.cpKey);
    await this.#history;
  }

  /** The decision for a source schema (the same one for the same schema). @throws IngestError `schema_conflict` */
  decide(schema: RecordSchema): Promise<ContractDecision> {
    const hash = schemaHash(schema);
    let d = this.#decisions.get(hash);
    if (!d) {
      d = this.#decide(schema);
      this.#decisions.set(hash, d);
    }
    return d.then((x) => {
      this.#last = x;
      return x;
    });
  }

  /** The decision of the schema seen last, if any. */
  get last(): ContractDecision | undefined {
    return this.#last;
  }

  async #decide(schema: RecordSchema): Promise<ContractDecision> {
    const { rc } = this;
    this.#history ??= readSchemaHistory(rc.opts.kv, rc.cpKey);
    const history = await this.#history;
    const same: ContractDecision = {
      schema,
      filter: { omit: [], nullify: [], dropIfSet: [], dropIfNull: [] },
      violations: [],
    };
    if (!history) return same;
    const before = versionSchema(history.current);
    const diff = diffSchemas(before, schema);
    if (!hasChanges(diff)) return same;
    const contract = resolveSchemaContract(this.contract);
    const decision = applyContract(before, diff, schema, contract, { rebuild: this.disposition === 'replace' });
    if (!this.#emitted) {
      this.#emitted = true;
      rc.emit({
        type: 'schema.changed',
        fromVersion: history.current.version,
        toVersion: history.current.version + (schemaHash(decision.schema) === history.current.hash ? 0 : 1),
        hash: schemaHash(decision.schema),
        diff,
        contract,
        ...(filtersRows(decision.filter) ? { discarded: decision.filter } : {}),
      });
      rc.logger.info('source schema changed', {
        unitId: rc.unitId,
        fromVersion: history.current.version,
        change: summarize(diff),
      });
    }
    if (decision.violations.length)
      throw contractError(
        { unitId: rc.unitId, what: rc.where(), historyKey: schemaHistoryKey(rc.cpKey).key },
        decision.violations,
        contract,
      );
    return decision;
  }

  /**
   * The source as the export sees it: plans and batches carry the schema to stage, rows are filtered by the
   * contract, and a pass-through read is declined when rows must change.
   */
  wrap<C extends Json>(source: SourceEndpoint<C>): SourceEndpoint<C> {
    const gate = this;
    const out: SourceEndpoint<C> = {
      descriptor: source.descriptor,
      async *read(req, ctx) {
        for await (const batch of source.read(req, ctx) as AsyncIterable<SourceBatch<C>>) {
          const d = batch.schema ? await gate.decide(batch.schema) : gate.last;
          if (!d) {
            yield batch;
            continue;
          }
          yield { ...batch, rows: filterRows(batch.rows, d.filter), ...(batch.schema ? { schema: d.schema } : {}) };
        }
      },
    };
    if (source.plan) {
      out.plan = async (req, ctx) => {
        const p = await source.plan!(req, ctx);
        if (!p?.schema) return p;
        const d = await gate.decide(p.schema);
        return { ...p, schema: d.schema };
      };
    }
    if (source.planValid) out.planValid = (req, ctx) => source.planValid!(req, ctx);
    if (source.readEncoded) {
      out.readEncoded = (codec, req, ctx) => {
        if (gate.last && filtersRows(gate.last.filter)) return undefined;
        const bytes = source.readEncoded!(codec, req, ctx);
        if (!bytes) return bytes;
        return (async function* (): AsyncGenerator<EncodedBatch> {
          for await (const b of bytes) {
            if (!b.schema) {
              yield b;
              continue;
            }
            const d = await gate.decide(b.schema);
            if (filtersRows(d.filter))
              throw new IngestError(
                'schema_conflict',
                `The schema contract of unit ${JSON.stringify(gate.rc.unitId)} discards values, which a pass-through read cannot do; the next attempt reads rows (${gate.rc.where()})`,
                { retryable: true },
              );
            yield { ...b, schema: d.schema };
          }
        })();
      };
    }
    return out;
  }
}
