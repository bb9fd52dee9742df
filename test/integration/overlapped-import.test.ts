/**
 * The overlapped import (docs/decisions/0018-overlapped-import.md): PostgreSQL → filesystem staging → PostgreSQL, a
 * planned export whose slices are imported as soon as they are staged. Shown through what a user sees: slices
 * committed before the export completed, targets equal to the source, a damaged slice that commits none of its rows
 * (`staging_corrupt`), and a failed overlapped import that falls back to the import step within one retry budget.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  abandonRun,
  checkpointKey,
  type ImportSlice,
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type RecordCodec,
  type RecordReader,
  runUnit,
  type SinkEndpoint,
} from '../../src/index.js';
import { PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { withReader } from '../helpers/import-slice.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('overlap');
const tmp = mkdtempSync(join(tmpdir(), 'overlap-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ROWS = 8000;
const SLICE = 2000;

beforeAll(async () => {
  await env.query(
    `CREATE TABLE "${env.schema}".src (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, tags jsonb)`,
  );
  await env.query(
    `INSERT INTO "${env.schema}".src SELECT g, 'name-' || g, g / 100.0,
       '2024-01-01T00:00:00Z'::timestamptz + g * interval '1001 microseconds', jsonb_build_object('g', g, 'f', 1.50)
     FROM generate_series(1, $1) g`,
    [ROWS],
  );
  await env.query(`ANALYZE "${env.schema}".src`);
});

let n = 0;
/** A run of the source table into a fresh target `dst_<n>`; returns what a test looks at. */
async function run(opts: {
  codec?: RecordCodec;
  disposition?: 'append' | 'merge' | 'replace';
  overlap?: boolean;
  sink?: (real: PostgresSink) => SinkEndpoint;
  source?: (real: PostgresSource) => PostgresSource;
  onEvent?: (e: IngestionEvent, root: string) => void;
  kv?: MemoryKvStore;
  target?: string;
}) {
  const target = opts.target ?? `dst_${++n}`;
  const pool = env.newPool({ max: 4 });
  const unitId = `${env.schema}.src`;
  const root = join(tmp, target);
  const real = new PostgresSink({
    pool,
    tables: { [unitId]: `${env.schema}.${target}` },
    ledgerTable: `${env.schema}.ledger`,
  });
  const events: IngestionEvent[] = [];
  const kv = opts.kv ?? new MemoryKvStore();
  const unit = { vendor: 'postgres', endpointId: 'pg', unitId, sinkId: target };
  try {
    const result = await runUnit({
      source: opts.source ? opts.source(new PostgresSource({ pool })) : new PostgresSource({ pool }),
      sink: opts.sink ? opts.sink(real) : real,
      staging: new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root }),
        ...(opts.codec ? { codec: opts.codec } : {}),
      }),
      kv,
      unit,
      mode: 'full',
      disposition: opts.disposition ?? 'append',
      ...(opts.disposition === 'merge' ? { primaryKey: ['id'] } : {}),
      policy: {
        sliceMaxRows: SLICE,
        chunkSize: 500,
        exportConcurrency: 1,
        retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
        ...(opts.overlap !== undefined ? { overlap: opts.overlap } : {}),
      },
      onEvent: (e) => {
        events.push(e);
        opts.onEvent?.(e, root);
      },
    });
    return { result, events, target, kv, unit };
  } catch (err) {
    return { error: err as IngestError, events, target, kv, unit };
  }
}

async function differing(target: string): Promise<number> {
  const s = env.schema;
  const { rows } = await env.query(
    `SELECT count(*)::int AS n FROM ((SELECT x::text FROM "${s}".src x EXCEPT ALL SELECT y::text FROM "${s}"."${target}" y)
     UNION ALL (SELECT y::text FROM "${s}"."${target}" y EXCEPT ALL SELECT x::text FROM "${s}".src x)) d`,
  );
  return rows[0].n as number;
}

async function ledger(target: string): Promise<Array<{ slice: number; rows: number }>> {
  const { rows } = await env.query(
    `SELECT slice, rows FROM "${env.schema}".ledger WHERE target LIKE $1 ORDER BY slice`,
    [`%${target}%`],
  );
  return rows.map((r) => ({ slice: Number(r.slice), rows: Number(r.rows) }));
}

/** Index in `events` of the first slice committed by the sink, and of `export.completed`. */
function order(events: IngestionEvent[]) {
  const committed = events.findIndex((e) => e.type === 'import.progress' && e.slice !== undefined);
  const exported = events.findIndex((e) => e.type === 'export.completed');
  return { committed, exported };
}

/** The staged object of slice `index` under `root` (the filesystem store's directory). */
function sliceFile(root: string, index: number): string | undefined {
  const walk = (dir: string): string | undefined => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (new RegExp(`^0*${index}\\.`).test(name) && !name.endsWith('.json')) return p;
    }
    return undefined;
  };
  return walk(root);
}

/** The source without its pass-through (`readEncoded`): every slice is read as rows and reaches the sink from staging. */
const rowPath = (real: PostgresSource) =>
  new Proxy(real, {
    get(t, p) {
      if (p === 'readEncoded') return undefined;
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });

/**
 * The sink, recording for each slice whether it was staged when the sink was handed it (`handed`), and the bytes it
 * read of it before it was staged (`early`); `staged` holds the slices staged so far, filled from the run's events.
 */
function recording(
  real: PostgresSink,
  staged: Set<number>,
  handed: Map<number, boolean>,
  early: Map<number, number> = new Map(),
): SinkEndpoint {
  const wrap = (s: ImportSlice): ImportSlice => {
    handed.set(s.index, staged.has(s.index));
    const reader: RecordReader = {
      iterBatches: (n) => s.reader.iterBatches(n),
      iterEncoded: () =>
        (async function* () {
          for await (const chunk of s.reader.iterEncoded!()) {
            if (!staged.has(s.index)) early.set(s.index, (early.get(s.index) ?? 0) + chunk.byteLength);
            yield chunk;
          }
        })(),
    };
    return withReader(s, reader);
  };
  return {
    descriptor: real.descriptor,
    import: (req, ctx) => real.import(req, ctx),
    importSlices: (req, ctx) =>
      real.importSlices(
        {
          ...req,
          slices: (async function* () {
            for await (const s of req.slices) yield wrap(s);
          })(),
        },
        ctx,
      ),
  };
}

describe('overlapped import (ADR 0018)', () => {
  for (const [name, codec] of [
    ['NDJSON', undefined],
    ['pass-through', pgCopyCodec()],
  ] as const) {
    it(`${name}: the sink takes each slice while it is exported (live slices), and lands every row once`, async () => {
      const staged = new Set<number>();
      const firstRead = new Map<number, boolean>();
      const r = await run({
        codec,
        sink: (real) => recording(real, staged, firstRead),
        onEvent: (e) => {
          if (e.type === 'slice.staged' && e.slice !== undefined) staged.add(e.slice);
        },
      });
      expect(r.error).toBeUndefined();
      expect(await differing(r.target)).toBe(0);
      expect([...firstRead.keys()].sort()).toEqual([0, 1, 2, 3]);
      // every slice was handed to the sink before it was staged
      expect([...firstRead.values()]).toEqual([false, false, false, false]);
      expect((await ledger(r.target)).map((l) => l.slice)).toEqual([0, 1, 2, 3]);
    });

    it(`${name}, row path: slices are handed to the sink once staged`, async () => {
      const staged = new Set<number>();
      const firstRead = new Map<number, boolean>();
      const r = await run({
        codec,
        source: rowPath,
        sink: (real) => recording(real, staged, firstRead),
        onEvent: (e) => {
          if (e.type === 'slice.staged' && e.slice !== undefined) staged.add(e.slice);
        },
      });
      expect(r.error).toBeUndefined();
      expect(await differing(r.target)).toBe(0);
      expect([...firstRead.values()]).toEqual([true, true, true, true]);
    });
  }

  it('pass-through: an export that fails after the sink read part of its live slice rolls the slice back; the import step lands every row once', async () => {
    let failed = 0;
    // slice 1's first attempt gives one chunk, waits for the sink to read it, then fails (retryable)
    const flaky = (real: PostgresSource) =>
      new Proxy(real, {
        get(t, p) {
          const v = Reflect.get(t, p, t);
          if (p !== 'readEncoded' || typeof v !== 'function') return typeof v === 'function' ? v.bind(t) : v;
          return (...args: unknown[]) => {
            const it = v.apply(t, args) as AsyncIterable<{ bytes: Uint8Array }> | undefined;
            const req = args[1] as { slice?: { index: number } };
            if (!it || req.slice?.index !== 1 || failed > 0) return it;
            return (async function* () {
              for await (const b of it) {
                yield { ...b, bytes: b.bytes.subarray(0, b.bytes.lastIndexOf(0x0a, 4000) + 1) };
                await new Promise((res) => setTimeout(res, 300));
                failed++;
                throw new IngestError('source_failed', 'connection reset (test)', { retryable: true });
              }
            })();
          };
        },
      });
    const staged = new Set<number>();
    const firstRead = new Map<number, boolean>();
    const early = new Map<number, number>();
    const r = await run({
      codec: pgCopyCodec(),
      source: flaky,
      sink: (real) => recording(real, staged, firstRead, early),
      onEvent: (e) => {
        if (e.type === 'slice.staged' && e.slice !== undefined) staged.add(e.slice);
      },
    });
    expect(failed).toBe(1);
    // the sink had read bytes of slice 1 before the export failed (and before the retry staged it)
    expect(early.get(1)).toBeGreaterThan(0);
    expect(r.error).toBeUndefined();
    expect(r.result!.stats.rowsImported).toBe(ROWS);
    expect(await differing(r.target)).toBe(0);
    const retried = r.events.filter((e) => e.type === 'retry.scheduled').map((e) => (e as { phase?: string }).phase);
    expect(retried.sort()).toEqual(['export', 'import']);
    expect((await ledger(r.target)).map((l) => l.slice)).toEqual([0, 1, 2, 3]);
  });

  for (const [name, codec] of [
    ['NDJSON', undefined],
    ['pass-through', pgCopyCodec()],
  ] as const) {
    for (const disposition of ['append', 'merge', 'replace'] as const) {
      it(`${name}, ${disposition}: is the default, commits slices while the export runs, and lands every row once`, async () => {
        const r = await run({ codec, disposition });
        expect(r.error).toBeUndefined();
        expect(r.result!.stats.rowsImported).toBe(ROWS);
        expect(r.result!.stats.slices).toBe(ROWS / SLICE);
        expect(await differing(r.target)).toBe(0);
        const { committed, exported } = order(r.events);
        expect(exported).toBeGreaterThan(0);
        // replace keeps its one transaction until the last slice: nothing is committed before the export completed
        if (disposition === 'replace') expect(committed).toBeGreaterThan(exported);
        else expect(committed).toBeLessThan(exported);
        expect((await ledger(r.target)).reduce((a, l) => a + l.rows, 0)).toBe(ROWS);
        const state = await r.kv.get({ ...checkpointKey(r.unit), key: `${checkpointKey(r.unit).key}::run` });
        expect((state?.value as { phase?: string })?.phase).toBe('committed');
      });
    }
  }

  it('policy.overlap false keeps the phases apart: no slice is committed before the export completed', async () => {
    const r = await run({ overlap: false });
    expect(r.error).toBeUndefined();
    expect(await differing(r.target)).toBe(0);
    const { committed, exported } = order(r.events);
    expect(committed).toBeGreaterThan(exported);
  });

  for (const [name, codec] of [
    ['NDJSON', undefined],
    ['pass-through', pgCopyCodec()],
  ] as const) {
    it(`${name}: a slice damaged before its overlapped import commits none of its rows; the run fails staging_corrupt`, async () => {
      let damaged = false;
      const r = await run({
        codec,
        // the row path: slices reach the sink from staging only (a live slice's bytes are the source's own)
        source: rowPath,
        onEvent: (e, root) => {
          // the moment slice 1 is staged — before it is handed to the sink — one byte in its middle changes
          if (e.type !== 'slice.staged' || e.slice !== 1) return;
          const file = sliceFile(root, 1)!;
          const bytes = readFileSync(file);
          const at = bytes.length >> 1;
          bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
          writeFileSync(file, bytes);
          damaged = true;
        },
      });
      expect(damaged).toBe(true);
      expect(r.error).toBeInstanceOf(IngestError);
      expect(r.error!.code).toBe('staging_corrupt');
      const slices = await ledger(r.target);
      expect(slices.map((l) => l.slice)).not.toContain(1);
      // what the target holds is exactly the committed slices, whole: nothing of slice 1
      const { rows } = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}"."${r.target}"`);
      expect(rows[0].n).toBe(slices.reduce((a, l) => a + l.rows, 0));
      const { rows: s1 } = await env.query(
        `SELECT count(*)::int AS n FROM "${env.schema}"."${r.target}" WHERE id > $1 AND id <= $2`,
        [SLICE, 2 * SLICE],
      );
      expect(s1[0].n).toBe(0);
    });
  }

  it('a failed overlapped import falls back to the import step (one retry budget) and lands every row once', async () => {
    let failures = 0;
    const r = await run({
      sink: (real) => ({
        descriptor: real.descriptor,
        import: (req, ctx) => real.import(req, ctx),
        // the streamed import fails (retryable) once slice 2 arrives, after slices 0 and 1 committed
        importSlices: (req, ctx) =>
          real.importSlices(
            {
              ...req,
              slices: (async function* () {
                for await (const s of req.slices) {
                  if (s.index === 2) {
                    failures++;
                    throw new IngestError('sink_failed', 'connection reset (test)', { retryable: true });
                  }
                  yield s;
                }
              })(),
            },
            ctx,
          ),
      }),
    });
    expect(failures).toBe(1);
    expect(r.error).toBeUndefined();
    expect(r.result!.stats.rowsImported).toBe(ROWS);
    expect(await differing(r.target)).toBe(0);
    const retries = r.events.filter((e) => e.type === 'retry.scheduled');
    expect(retries).toMatchObject([{ phase: 'import', attempt: 1 }]);
    // every slice once in the ledger: the fallback skipped the ones the overlapped import committed
    expect((await ledger(r.target)).map((l) => l.slice)).toEqual([0, 1, 2, 3]);
  });

  it('a non-retryable overlapped failure fails the run in phase importing; the next run imports the rest', async () => {
    const kv = new MemoryKvStore();
    let fail = true;
    const flaky = (real: PostgresSink): SinkEndpoint => ({
      descriptor: real.descriptor,
      import: (req, ctx) => real.import(req, ctx),
      importSlices: (req, ctx) =>
        real.importSlices(
          {
            ...req,
            slices: (async function* () {
              for await (const s of req.slices) {
                if (s.index === 2 && fail) throw new IngestError('sink_failed', 'a bug (test)', { retryable: false });
                yield s;
              }
            })(),
          },
          ctx,
        ),
    });
    const first = await run({ kv, sink: flaky, target: 'dst_resume' });
    expect(first.error?.code).toBe('sink_failed');
    const key = checkpointKey(first.unit);
    const state = await kv.get({ ...key, key: `${key.key}::run` });
    expect((state?.value as { phase?: string } | undefined)?.phase).toBe('importing');
    fail = false;
    const second = await run({ kv, sink: flaky, target: 'dst_resume' });
    expect(second.error).toBeUndefined();
    expect(second.result!.resumed).toBe(true);
    expect(await differing('dst_resume')).toBe(0);
    expect((await ledger('dst_resume')).map((l) => l.slice)).toEqual([0, 1, 2, 3]);
  });

  it('an export that fails mid-run waits for the slices in flight; the streaming run can be abandoned, partly imported', async () => {
    const kv = new MemoryKvStore();
    // slice 2 of the source fails for good, after slices 0 and 1 were staged and handed to the sink
    const failing = (real: PostgresSource) =>
      new Proxy(real, {
        get(t, p) {
          const v = Reflect.get(t, p, t);
          if ((p === 'read' || p === 'readEncoded') && typeof v === 'function') {
            return (...args: unknown[]) => {
              const req = args[p === 'read' ? 0 : 1] as { slice?: { index: number } };
              if (req.slice?.index !== 2) return v.apply(t, args);
              // late enough for the sink to have taken slices 0 and 1
              return (async function* () {
                await new Promise((res) => setTimeout(res, 1500));
                throw new IngestError('source_failed', 'a bug (test)', { retryable: false });
              })();
            };
          }
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    const r = await run({ kv, source: failing, target: 'dst_abandon' });
    expect(String((r.error?.cause as Error | undefined)?.message ?? r.error?.message)).toContain('a bug (test)');
    expect(r.error?.code).toBe('source_failed');
    const key = checkpointKey(r.unit);
    const state = (await kv.get({ ...key, key: `${key.key}::run` }))?.value as { phase?: string; runId?: string };
    expect(state.phase).toBe('streaming');
    // the import was awaited before the run failed: slices 0 and 1 committed whole, nothing else
    const slices = await ledger('dst_abandon');
    expect(slices.map((l) => l.slice)).toEqual([0, 1]);
    const { rows } = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".dst_abandon`);
    expect(rows[0].n).toBe(2 * SLICE);
    const dropped = await abandonRun({ kv, unit: r.unit, reason: 'test' });
    expect(dropped).toMatchObject({ runId: state.runId, phase: 'streaming', partlyImported: true });
  });
});
