import { z } from 'zod';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportRequest, ImportResult, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/** Descriptor of {@link MemorySink} (id `memory`). @public */
export const memorySinkDescriptor: EndpointDescriptor<{ chunkSize?: number }> = {
  id: 'memory',
  role: 'sink',
  family: 'memory',
  title: 'In-memory table',
  version: '1.0.0',
  capabilities: [],
  config: z.object({ chunkSize: z.number().int().positive().optional() }),
};

/** One `import` call as the sink saw it. @public */
export interface MemorySinkImport {
  unitId: string;
  runId: string;
  disposition: ImportRequest['disposition'];
  /** Slices committed by this call (already-committed ones are skipped). */
  committed: number[];
  skipped: number[];
}

/**
 * A sink that keeps tables in memory, idempotent per `(runId, slice)`: a slice of a run is committed
 * once, atomically (all its rows or none), however often it is imported — like the PostgreSQL sink's ledger.
 * `append` adds rows, `merge` upserts on the primary key, `replace` swaps the table when the run's last slice commits.
 *
 * @example
 * ```ts
 * import { MemorySink } from '@nucleus/ingestion/testing';
 * const sink = new MemorySink();
 * // … runUnit({ sink, … })
 * console.log(sink.rows('users'));
 * ```
 * @public
 */
export class MemorySink implements SinkEndpoint {
  readonly descriptor: EndpointDescriptor = memorySinkDescriptor;
  /** Every import call, in order. */
  readonly imports: MemorySinkImport[] = [];
  readonly #tables = new Map<string, Row[]>();
  readonly #ledger = new Set<string>();
  readonly #pendingReplace = new Map<string, Row[]>();
  readonly #chunkSize: number;

  constructor(opts: { chunkSize?: number } = {}) {
    this.#chunkSize = opts.chunkSize ?? 1000;
  }

  /** The rows of a unit's table (a copy of the array). */
  rows(unitId: string): Row[] {
    return [...(this.#tables.get(unitId) ?? [])];
  }

  /** Whether `(runId, slice)` of a unit was committed. */
  hasCommitted(unitId: string, runId: string, slice: number): boolean {
    return this.#ledger.has(ledgerKey(unitId, runId, slice));
  }

  /** Import the staged rows into the unit's in-memory table; a slice already committed by this run is skipped. */
  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    const call: MemorySinkImport = {
      unitId: req.unitId,
      runId: ctx.runId,
      disposition: req.disposition,
      committed: [],
      skipped: [],
    };
    this.imports.push(call);
    if (req.disposition === 'merge' && !req.primaryKey?.length) {
      throw new IngestError('config_invalid', `Merge into ${req.unitId} needs a primary key`, { retryable: false });
    }
    let rowsImported = 0;
    for (const slice of req.slices) {
      const key = ledgerKey(req.unitId, ctx.runId, slice.index);
      if (this.#ledger.has(key)) {
        call.skipped.push(slice.index);
        rowsImported += slice.rows;
        continue;
      }
      const rows: Row[] = [];
      for await (const batch of slice.reader.iterBatches(this.#chunkSize)) rows.push(...batch);
      // Commit point of the slice: rows and ledger entry together.
      this.#apply(req, ctx.runId, rows);
      this.#ledger.add(key);
      call.committed.push(slice.index);
      rowsImported += rows.length;
    }
    if (req.disposition === 'replace') {
      const staged = this.#pendingReplace.get(pendingKey(req.unitId, ctx.runId)) ?? [];
      this.#tables.set(req.unitId, staged);
    }
    return { rowsImported };
  }

  #apply(req: ImportRequest, runId: string, rows: Row[]): void {
    if (req.disposition === 'replace') {
      const k = pendingKey(req.unitId, runId);
      const pending = this.#pendingReplace.get(k) ?? [];
      for (const r of rows) pending.push(r);
      this.#pendingReplace.set(k, pending);
      return;
    }
    const table = this.#tables.get(req.unitId) ?? [];
    if (req.disposition === 'append') {
      // not push(...rows): a slice of 150,000 rows overflows the call stack
      for (const r of rows) table.push(r);
    } else {
      const pk = req.primaryKey!;
      const index = new Map<string, number>();
      for (let i = 0; i < table.length; i++) index.set(keyOf(table[i], pk), i);
      for (const r of rows) {
        const k = keyOf(r, pk);
        const at = index.get(k);
        if (at === undefined) {
          index.set(k, table.length);
          table.push(r);
        } else table[at] = r;
      }
    }
    this.#tables.set(req.unitId, table);
  }
}

function ledgerKey(unitId: string, runId: string, slice: number): string {
  return JSON.stringify([unitId, runId, slice]);
}
function pendingKey(unitId: string, runId: string): string {
  return JSON.stringify([unitId, runId]);
}
function keyOf(row: Row, pk: string[]): string {
  return JSON.stringify(pk.map((c) => normalize(row[c])));
}
function normalize(v: Value): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Date) return v.toISOString();
  return v;
}
