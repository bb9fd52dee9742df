import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  exportUnit,
  importUnit,
  type Logger,
  MemoryKvStore,
  ndjsonCodec,
  ObjectStoreStagingProvider,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { createMatrix, diffTables } from './fixtures/pg-type-matrix.js';

/*
 * The NDJSON transcoders on real PostgreSQL output (docs/decisions/0008-transcoded-row-paths.md): the source stages
 * exactly the bytes the row path stages, for every type of the matrix, and the sink loads staged NDJSON — its own or
 * the row path's — into targets equal to the source as text, both ways.
 */

const env = usePostgres('ndjtr');
const tmp = mkdtempSync(join(tmpdir(), 'pg-ndjson-transcode-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => createMatrix(env));

/** A logger that keeps the debug messages (the transcoded paths say so there). */
function recorder(): Logger & { debugs: string[] } {
  const debugs: string[] = [];
  return { debugs, debug: (m: string) => debugs.push(m), info() {}, warn() {}, error() {} };
}

/** Every staged object under `root` (relative path → bytes), manifests and markers left out. */
function stagedSlices(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ndjson')) out.set(name, readFileSync(p));
    }
  };
  walk(root);
  return out;
}

let runs = 0;
async function stage(root: string, viaRows: boolean, sinkId?: string) {
  const unitId = `${env.schema}.src`;
  const logger = recorder();
  const staging = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }), codec: ndjsonCodec() });
  const source = new PostgresSource({
    pool: env.newPool({ max: 2, options: `-c search_path="${env.schema}",public` }),
  });
  let reads = 0;
  const read = source.read.bind(source);
  source.read = (req, ctx) => {
    reads++;
    return read(req, ctx);
  };
  const kv = new MemoryKvStore();
  const base = {
    staging,
    kv,
    unit: { vendor: 'postgres', endpointId: 'ndjtr', unitId, ...(sinkId ? { sinkId } : {}) },
    mode: 'full' as const,
    runId: `ndjtr-${++runs}`,
    logger,
  };
  const res = await exportUnit({
    ...base,
    source,
    // a dead-letter policy makes the export take rows (export-encoded.ts): the row path to compare with
    ...(viaRows
      ? {
          deadLetter: { async write() {} },
          policy: { sliceMaxRows: 2, chunkSize: 2, onRejectedRow: 'dead-letter' as const },
        }
      : { policy: { sliceMaxRows: 2, chunkSize: 2 } }),
  });
  return { res, reads, logger, base };
}

describe('NDJSON transcoders on real PostgreSQL (every type of the matrix)', () => {
  it('the source stages the bytes the row path stages, slice by slice, without reading rows', async () => {
    const fast = await stage(join(tmp, 'fast'), false);
    const rows = await stage(join(tmp, 'rows'), true);
    expect(fast.res.stats.rowsExported).toBe(4);
    expect(rows.res.stats.rowsExported).toBe(4);
    expect(fast.reads).toBe(0);
    expect(rows.reads).toBeGreaterThan(0);
    expect(fast.logger.debugs.filter((m) => m.includes('transcoded to ndjson')).length).toBeGreaterThanOrEqual(2);
    const a = stagedSlices(join(tmp, 'fast'));
    const b = stagedSlices(join(tmp, 'rows'));
    expect(a.size).toBeGreaterThanOrEqual(2);
    const bySlice = (m: Map<string, Buffer>) =>
      [...m.entries()].map(([k, v]) => [k.replace(/^.*?(\d+)\.ndjson$/, '$1'), v.toString('utf8')]).sort();
    expect(bySlice(a)).toEqual(bySlice(b));
  });

  for (const [name, viaRows] of [
    ['staged by the transcoder', false],
    ['staged by the row path', true],
  ] as const) {
    it(`the sink loads NDJSON ${name} through COPY text: targets equal the source as text, both ways`, async () => {
      const s = env.schema;
      const pre = `pre_${viaRows ? 'rows' : 'fast'}`;
      await env.query(`CREATE TABLE "${s}".${pre} (LIKE "${s}".src INCLUDING ALL)`);
      // a pre-created target, and one the sink creates from the staged schema
      for (const target of [pre, `made_${viaRows ? 'rows' : 'fast'}`]) {
        const { base } = await stage(join(tmp, `import-${target}`), viaRows, target);
        const logger = recorder();
        const sink = new PostgresSink({
          pool: env.newPool({ max: 2, options: `-c search_path="${s}",public -c TimeZone=America/St_Johns` }),
          tables: { [base.unit.unitId]: `${s}.${target}` },
          ledgerTable: `${s}.ledger_${target}`,
        });
        const res = await importUnit({ ...base, sink, logger });
        expect(res.stats.rowsImported).toBe(4);
        expect(logger.debugs.filter((m) => m.includes('transcoded to COPY text')).length).toBeGreaterThanOrEqual(2);
        expect(await diffTables(env, 'src', target)).toEqual([]);
      }
    });
  }
});
