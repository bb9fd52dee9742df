import type { IngestionContext } from '../../contracts/context.js';
import type { RecordSchema, Row } from '../../contracts/values.js';
import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import { plainJson as toPlainJson } from '../../sinks/plain-json.js';
import { abortable } from '../../util/abort.js';
import { createFileEndpoint, unitRefOf } from '../environment.js';
import { renderTable, truncate } from '../format.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

/**
 * `nucleus-ingest preview`: the first rows of a unit — the source's `preview()` when it has one, else the first
 * rows of a full read (which is then stopped). Nothing is staged and no state changes.
 * @internal
 */
export async function previewCommand(o: {
  file: PipelineFile;
  registry: EndpointRegistry;
  unitId: string;
  limit: number;
  reporter: Reporter;
  signal: AbortSignal;
  tty: boolean;
  out: { write(s: string): unknown; columns?: number };
}): Promise<number> {
  const source = await createFileEndpoint(o.registry, o.file, 'source');
  const unit = unitRefOf(o.file, o.unitId);
  const ctx: IngestionContext = {
    workspaceId: unit.workspaceId,
    endpointId: unit.endpointId,
    unitId: o.unitId,
    sinkId: unit.sinkId,
    runId: 'preview',
    vendor: unit.vendor,
    signal: o.signal,
    logger: o.reporter.logger,
    emit: () => {},
  };
  let rows: Row[] = [];
  let schema: RecordSchema | undefined;
  try {
    if (source.preview) {
      ({ rows, schema } = await source.preview({ unitId: o.unitId, limit: o.limit }, ctx));
    } else {
      const stop = new AbortController();
      const readCtx = { ...ctx, signal: AbortSignal.any([o.signal, stop.signal]) };
      for await (const batch of abortable(
        source.read({ unitId: o.unitId, mode: 'full', checkpoint: null }, readCtx),
        readCtx.signal,
      )) {
        schema ??= batch.schema;
        rows.push(...batch.rows.slice(0, o.limit - rows.length));
        if (rows.length >= o.limit) break;
      }
      stop.abort();
    }
  } finally {
    await source.close?.();
  }
  rows = sortByKey(rows.slice(0, o.limit), schema?.primaryKey);
  const plain = rows.map((r) => toPlainJson(r) as Record<string, unknown>);
  if (o.tty) {
    const columns = [...new Set(plain.flatMap((r) => Object.keys(r)))];
    const cell = (v: unknown) => truncate(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''), 40);
    o.out.write(
      `${renderTable(
        columns,
        plain.map((r) => columns.map((c) => cell(r[c]))),
      )}\n(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})\n`,
    );
  } else {
    o.reporter.document('preview', { unitId: o.unitId, schema: schema ?? null, rows: plain });
  }
  return 0;
}

/** Rows in primary-key order (stable; rows as they came when the schema names no key). */
function sortByKey(rows: Row[], key: string[] | undefined): Row[] {
  if (!key || key.length === 0) return rows;
  const cmp = (a: unknown, b: unknown): number => {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint'))
      return a < b ? -1 : a > b ? 1 : 0;
    const x = a instanceof Date ? a.toISOString() : String(a);
    const y = b instanceof Date ? b.toISOString() : String(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return [...rows].sort((r1, r2) => {
    for (const k of key) {
      const c = cmp(r1[k], r2[k]);
      if (c !== 0) return c;
    }
    return 0;
  });
}
