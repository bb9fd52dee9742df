import type { IngestionContext } from '../contracts/context.js';
import type { ObjectStore } from '../contracts/object-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/** One run directory named by an {@link ObjectStorePointer}. @public */
export interface ObjectStorePointerRun {
  [key: string]: Json;
  runId: string;
  dir: string;
  rows: number;
  files: number;
  at: string;
}

/**
 * The pointer object `<prefix>/<unit>/_CURRENT`: which run directories make up the unit's current data.
 *
 * Its size is bounded: `runs` holds at most `pointerMaxRuns` runs (the newest, oldest first); older runs of an
 * `append` unit move, in immutable chunks, to `<prefix>/<unit>/_HISTORY/<n>.json`, each naming the chunk before it, and
 * `history` names the newest chunk. `sink.currentRuns(unitId)` walks them all.
 * @public
 */
export interface ObjectStorePointer {
  [key: string]: Json;
  /** 1: written before 0.2 (no `fencingToken`, no `history`: read as `null`); 2: with both. */
  version: 1 | 2;
  unitId: string;
  format: string;
  /** `replace`: exactly one run; `append`: the newest runs, oldest first (older ones are in `history`). */
  runs: ObjectStorePointerRun[];
  updatedAt: string;
  /** The highest fencing token (the unit lease's version) that wrote the pointer; a lower one is refused. */
  fencingToken: number | null;
  /** The newest chunk of older runs, with totals over every chunk; `null` when there is none. */
  history: { key: string; chunks: number; runs: number; rows: number } | null;
}

/** One immutable chunk of a pointer's history. @public */
export interface ObjectStorePointerHistoryChunk {
  [key: string]: Json;
  version: 1;
  unitId: string;
  /** Oldest first. */
  runs: ObjectStorePointerRun[];
  /** The chunk before this one, or `null` for the first. */
  previous: string | null;
}

/** Read a JSON object of the sink, `undefined` when missing. @internal */
export async function readJsonObject<T>(store: ObjectStore, key: string, signal?: AbortSignal): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key, signal ? { signal } : {})) chunks.push(c);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch (err) {
    throw new IngestError('sink_failed', `${key} is not valid JSON`, { cause: err, retryable: false });
  }
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

/** What switching the pointer needs. @internal */
export interface PointerSwitch {
  store: ObjectStore;
  key: string;
  unitDir: string;
  unitId: string;
  format: string;
  append: boolean;
  run: ObjectStorePointerRun;
  maxRuns: number;
  ctx: IngestionContext;
}

function fenced(p: PointerSwitch, stored: number | null | undefined): IngestError {
  return new IngestError(
    'lease_lost',
    `ObjectStoreSink: pointer ${p.key} was written by a newer lease holder (token ${stored} > ${p.ctx.fencingToken}); run ${p.run.runId} is fenced off and leaves it as it is`,
    { retryable: true, details: { pointer: p.key, token: p.ctx.fencingToken, stored, runId: p.run.runId } },
  );
}

/**
 * Switch the unit's pointer to include (`append`) or be (`replace`) `run`, fenced and bounded:
 * - the writer's fencing token is stored; a pointer stored with a higher token is never overwritten (`lease_lost`),
 *   and the pointer is read back after the write, so a newer holder that wrote meanwhile fences this one as well.
 *   Without conditional puts in the ObjectStore contract one read-to-put window remains: the commit's own fencing
 *   (the checkpoint's compare-and-set) still refuses the stale run, and the newer holder's pointer switch repairs it;
 * - `runs` keeps at most `maxRuns` entries: past that, the older half moves to a new immutable history chunk.
 * @throws IngestError `lease_lost` when a newer lease holder wrote the pointer
 * @internal
 */
export async function switchPointer(p: PointerSwitch): Promise<ObjectStorePointer> {
  const { store, ctx } = p;
  const token = ctx.fencingToken;
  const current = await readJsonObject<ObjectStorePointer>(store, p.key, ctx.signal);
  const stored = current?.fencingToken ?? null;
  if (token !== undefined && stored !== null && stored > token) throw fenced(p, stored);

  let runs = p.append ? [...(current?.runs ?? []).filter((r) => r.runId !== p.run.runId), p.run] : [p.run];
  let history = p.append ? (current?.history ?? null) : null;
  if (runs.length > p.maxRuns) {
    const keep = Math.max(1, Math.floor(p.maxRuns / 2));
    const moved = runs.slice(0, runs.length - keep);
    runs = runs.slice(runs.length - keep);
    const n = (history?.chunks ?? 0) + 1;
    const chunkKey = `${p.unitDir}/_HISTORY/${String(n).padStart(8, '0')}.json`;
    const chunk: ObjectStorePointerHistoryChunk = {
      version: 1,
      unitId: p.unitId,
      runs: moved,
      previous: history?.key ?? null,
    };
    // Written before the pointer that names it; a retried switch rewrites the same chunk from the same pointer.
    await store.put(chunkKey, json(chunk), { contentType: 'application/json', signal: ctx.signal });
    history = {
      key: chunkKey,
      chunks: n,
      runs: (history?.runs ?? 0) + moved.length,
      rows: (history?.rows ?? 0) + moved.reduce((s, r) => s + r.rows, 0),
    };
  }
  const pointer: ObjectStorePointer = {
    version: 2,
    unitId: p.unitId,
    format: p.format,
    runs,
    updatedAt: p.run.at,
    fencingToken: token === undefined ? stored : Math.max(token, stored ?? token),
    history,
  };
  await store.put(p.key, json(pointer), { contentType: 'application/json', signal: ctx.signal });
  if (token !== undefined) {
    const after = await readJsonObject<ObjectStorePointer>(store, p.key, ctx.signal);
    const now = after?.fencingToken ?? null;
    if (now !== null && now > token) throw fenced(p, now);
  }
  return pointer;
}

/** Every run a pointer names, oldest first: its history chunks (walked from the newest), then `runs`. @internal */
export async function pointerRuns(store: ObjectStore, pointer: ObjectStorePointer): Promise<ObjectStorePointerRun[]> {
  const chunks: ObjectStorePointerRun[][] = [];
  for (let key = pointer.history?.key ?? null, guard = 0; key && guard < 1_000_000; guard++) {
    const chunk = await readJsonObject<ObjectStorePointerHistoryChunk>(store, key);
    if (!chunk) throw new IngestError('not_found', `Pointer history chunk ${key} is missing`, { details: { key } });
    chunks.push(chunk.runs);
    key = chunk.previous;
  }
  return [...chunks.reverse().flat(), ...pointer.runs];
}
