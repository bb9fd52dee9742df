import type { KvKey } from '../contracts/kv-store.js';

/** The parts of a unit that name its checkpoint. @public */
export interface CheckpointKeyParts {
  vendor: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
  workspaceId?: string;
}

/**
 * One id as a segment of a `::`-joined state key. An id that could not be confused keeps its text — no `::` inside,
 * no `:` at either end, not starting with `%` — so keys written by earlier versions are still found. Any other id is
 * written as `%` followed by the id with `%` and `:` percent-encoded (`s::lease` → `%s%3A%3Alease`): the result has
 * no `:` at all, so no id can borrow a separator, and no two ids give one segment (ADR 0017).
 * @internal
 */
export function keySegment(id: string): string {
  if (!id.includes('::') && !id.startsWith(':') && !id.endsWith(':') && !id.startsWith('%')) return id;
  return `%${id.replace(/%/g, '%25').replace(/:/g, '%3A')}`;
}

/**
 * Where a unit's checkpoint lives in the KvStore:
 * `{ namespace: 'ingestion', scopeId: workspaceId ?? 'default', key: 'ingest::<vendor>::endpoint::<endpointId>::unit::<unitId>::sink::<sinkId|"">' }`.
 * Run state lives at `<key>::run`, the lease at `<key>::lease`, a finished run's receipt at `<key>::run::<runId>`.
 *
 * Each id is one segment: an id holding `::`, starting or ending with `:`, or starting with `%` is escaped
 * (`%` + the id with `%` and `:` percent-encoded), so no two distinct (vendor, endpoint, unit, sink, run id) give one
 * key — a sinkId `s::lease` cannot name the lease of sink `s`. Every other id is written as it is, as before.
 *
 * @example
 * ```ts
 * import { checkpointKey } from '@nucleus/ingestion';
 * const key = checkpointKey({ vendor: 'postgres', endpointId: 'pg-main', unitId: 'public.orders' });
 * ```
 * @public
 */
export function checkpointKey(u: CheckpointKeyParts): KvKey {
  const seg = keySegment;
  return {
    namespace: 'ingestion',
    scopeId: u.workspaceId ?? 'default',
    key: `ingest::${seg(u.vendor)}::endpoint::${seg(u.endpointId)}::unit::${seg(u.unitId)}::sink::${seg(u.sinkId ?? '')}`,
  };
}

/** Key of a unit's run state. @public */
export function runStateKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::run` };
}

/** Key of a unit's lease. @public */
export function leaseKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::lease` };
}

/** Key of a unit's schema history (docs/schema-evolution.md). @public */
export function schemaHistoryKey(checkpoint: KvKey): KvKey {
  return { ...checkpoint, key: `${checkpoint.key}::schema` };
}

/** Key of a finished run's receipt: `<checkpoint key>::run::<runId>` (the run id as one {@link keySegment}). @internal */
export function receiptKey(runState: KvKey, runId: string): KvKey {
  return { ...runState, key: `${runState.key}::${keySegment(runId)}` };
}

/** What a state key names, as {@link parseStateKey} reads it back. @internal */
export interface ParsedStateKey {
  kind: 'checkpoint' | 'run' | 'lease' | 'receipt' | 'other';
  vendor: string;
  endpointId: string;
  unitId: string;
  sinkId: string;
  /** The run id of a receipt. */
  runId?: string;
  /** The labels after the checkpoint key of a kind this module does not know (`other`). */
  rest?: string[];
}

/** The id a {@link keySegment} stands for. */
function fromSegment(segment: string): string {
  if (!segment.startsWith('%')) return segment;
  return segment.slice(1).replace(/%3A/g, ':').replace(/%25/g, '%');
}

/**
 * Read a key of the `ingestion` namespace back into what it names, or `undefined` when it is not one. Every key
 * {@link checkpointKey} and its companions write reads back to the parts it was made of — which is why no two distinct
 * parts give one key.
 * @internal
 */
export function parseStateKey(key: string): ParsedStateKey | undefined {
  const p = key.split('::');
  if (p.length < 8 || p[0] !== 'ingest' || p[2] !== 'endpoint' || p[4] !== 'unit' || p[6] !== 'sink') return undefined;
  const base = {
    vendor: fromSegment(p[1]!),
    endpointId: fromSegment(p[3]!),
    unitId: fromSegment(p[5]!),
    sinkId: fromSegment(p[7]!),
  };
  const rest = p.slice(8);
  if (rest.length === 0) return { kind: 'checkpoint', ...base };
  if (rest.length === 1 && rest[0] === 'run') return { kind: 'run', ...base };
  if (rest.length === 1 && rest[0] === 'lease') return { kind: 'lease', ...base };
  if (rest.length === 2 && rest[0] === 'run') return { kind: 'receipt', ...base, runId: fromSegment(rest[1]!) };
  return { kind: 'other', ...base, rest };
}
