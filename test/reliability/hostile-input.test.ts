/**
 * Hostile input through the whole pipeline: path-traversal ids, hostile SQL identifiers, `__proto__` /
 * `constructor` keys, a row larger than `maxRowBytes` and gzip bombs under a 256 MB heap, and a full disk under
 * filesystem staging. Each ends in a typed error or in exact data — never in escaped files, executed SQL, a
 * polluted prototype, a dead process or a `_SUCCESS` for an incomplete slice.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  IngestError,
  MemoryKvStore,
  type ObjectStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
} from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';
import { explain, killLeftovers, prepareWorker, ROOT, recordFigures, spawnWorker } from './harness.js';

const env = usePostgres('rel_hostile');
const tmp = mkdtempSync(join(tmpdir(), 'nucleus-hostile-'));
const HOSTILE_WORKER = join(ROOT, 'test/reliability/workers/hostile-worker.ts');
const figures = { cases: [] as string[], typedErrors: 0, maxRssMb: 0, fullDisk: '' };

beforeAll(async () => {
  await prepareWorker(HOSTILE_WORKER);
});
afterAll(() => {
  killLeftovers();
  try {
    execFileSync('umount', [join(tmp, 'tmpfs')], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  rmSync(tmp, { recursive: true, force: true });
  recordFigures('hostile-input', figures);
});

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)));
}

function prototypeSnapshot(): string {
  return JSON.stringify([
    Object.getOwnPropertyNames(Object.prototype).sort(),
    Object.getOwnPropertyNames(Array.prototype).sort(),
  ]);
}

describe('hostile ids and keys', () => {
  it('path-traversal workspace, endpoint and run ids stay inside the staging root (or are refused)', async () => {
    const outer = join(tmp, 'traversal');
    const root = join(outer, 'root');
    mkdirSync(root, { recursive: true });
    const hostile = [
      '..',
      '../..',
      '../../escape',
      '/etc/passwd',
      'a/../../b',
      '..\\..\\win',
      '%2e%2e',
      '.',
      'x\u0000y',
    ];
    for (const [i, bad] of hostile.entries()) {
      const sink = new MemorySink();
      const ids = [
        { workspaceId: bad, endpointId: `ep${i}`, runId: undefined },
        { workspaceId: `ws${i}`, endpointId: bad, runId: undefined },
        { workspaceId: `ws${i}`, endpointId: `e${i}`, runId: bad },
      ];
      for (const id of ids) {
        const outcome = await runUnit({
          source: new MemorySource({ units: { u: { rows: [{ id: 1 }, { id: 2 }] } } }),
          sink,
          staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
          kv: new MemoryKvStore(),
          unit: { workspaceId: id.workspaceId, endpointId: id.endpointId, unitId: 'u' },
          ...(id.runId !== undefined ? { runId: id.runId } : {}),
          mode: 'full',
        }).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, e }),
        );
        if (!outcome.ok) {
          expect(IngestError.is(outcome.e), `${JSON.stringify(id)}: ${String(outcome.e)}`).toBe(true);
          expect(['config_invalid', 'invalid_key']).toContain((outcome.e as IngestError).code);
          figures.typedErrors++;
        } else expect(outcome.r.stats.rowsImported).toBe(2);
      }
    }
    // Nothing was written next to the root.
    expect(readdirSync(outer)).toEqual(['root']);
    for (const f of filesUnder(root)) expect(f.startsWith('..')).toBe(false);
    figures.cases.push('path traversal ids');
  });

  it('__proto__ and constructor keys are data end to end; Object.prototype is unchanged', async () => {
    const before = prototypeSnapshot();
    const rows: Row[] = [
      JSON.parse(
        '{"id": 1, "__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted2": "yes"}}, "prototype": 1}',
      ),
      JSON.parse('{"id": 2, "nested": {"__proto__": {"polluted3": "yes"}}, "constructor": "c"}'),
    ];
    const sink = new MemorySink();
    for (const codec of ['ndjson', 'ndjson.gz'] as const) {
      await runUnit({
        source: new MemorySource({ units: { protos: { rows } } }),
        sink,
        staging: new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: join(tmp, `proto-${codec}`) }),
          codec,
        }),
        kv: new MemoryKvStore(),
        unit: { endpointId: `proto-${codec}`, unitId: 'protos' },
        mode: 'full',
      });
    }
    const out = sink.rows('protos');
    expect(out).toHaveLength(4);
    expect(Object.hasOwn(out[0], '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(out[0])).toBe(Object.prototype);
    expect((out[0] as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(out[0])).toBe(JSON.stringify(rows[0]));
    expect(JSON.stringify(out[1])).toBe(JSON.stringify(rows[1]));
    expect(
      ({} as Record<string, unknown>).polluted ??
        ({} as Record<string, unknown>).polluted2 ??
        ({} as Record<string, unknown>).polluted3,
    ).toBeUndefined();
    expect(prototypeSnapshot()).toBe(before);
    figures.cases.push('__proto__ keys (memory sink)');
  });

  it('hostile SQL identifiers and __proto__ columns go through PostgreSQL source and sink as data', async () => {
    const before = prototypeSnapshot();
    const s = env.schema;
    const table = 'src"; DROP TABLE canary; --';
    const target = 'dst"); DELETE FROM canary; --';
    const q = (id: string) => `"${id.replaceAll('"', '""')}"`;
    await env.query(`CREATE TABLE ${q(s)}.canary (x int)`);
    await env.query(`INSERT INTO ${q(s)}.canary VALUES (1)`);
    await env.query(
      `CREATE TABLE ${q(s)}.${q(table)} (id bigint PRIMARY KEY, ${q('__proto__')} text, ${q('constructor')} text, ${q('a"b; --')} text, ${q('select')} int)`,
    );
    await env.query(
      `INSERT INTO ${q(s)}.${q(table)} SELECT g, 'p' || g, 'c' || g, 'q''"' || g, g FROM generate_series(100, 599) g`,
    );
    const unitId = `${q(s)}.${q(table)}`;
    const kv = new PostgresKvStore({ db: env.newKysely(), schema: s });
    await kv.migrate();
    const result = await runUnit({
      source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['id'] } } }),
      sink: new PostgresSink({
        pool: env.newPool({ max: 2 }),
        schema: s,
        tables: { [unitId]: `${q(s)}.${q(target)}` },
      }),
      staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: join(tmp, 'sql') }) }),
      kv,
      unit: { vendor: 'postgres', endpointId: 'hostile-sql', unitId, sinkId: 'x' },
      mode: 'incremental',
    });
    expect(result.stats.rowsImported).toBe(500);
    expect((await env.query(`SELECT count(*)::int AS n FROM ${q(s)}.canary`)).rows[0].n).toBe(1);
    const diff = await env.query(
      `SELECT count(*)::int AS n FROM (SELECT * FROM ${q(s)}.${q(table)} EXCEPT SELECT id, ${q('__proto__')}, ${q('constructor')}, ${q('a"b; --')}, ${q('select')} FROM ${q(s)}.${q(target)}) d`,
    );
    expect(diff.rows[0].n).toBe(0);
    expect(prototypeSnapshot()).toBe(before);
    figures.cases.push('hostile SQL identifiers + __proto__ columns (PostgreSQL)');
  }, 60_000);
});

describe('memory bombs under a 256 MB heap', () => {
  for (const [mode, codes] of [
    ['big-row', ['row_rejected']],
    ['gzip-bomb-line', ['row_rejected', 'staging_corrupt']],
    ['gzip-bomb-rows', ['staging_corrupt', 'row_rejected']],
  ] as const) {
    it(`${mode}: a typed error, and the process survives`, async () => {
      const root = join(tmp, mode);
      mkdirSync(root, { recursive: true });
      const o = await spawnWorker(
        { HOSTILE: mode, FS_ROOT: root },
        { script: HOSTILE_WORKER, nodeArgs: ['--max-old-space-size=256'] },
      ).done;
      expect(o.code, explain(o)).toBe(0);
      expect(o.result?.ok).toBe(false);
      expect(codes as readonly string[]).toContain(o.result?.code);
      const rss = (o.result as unknown as { maxRssMb: number }).maxRssMb;
      expect(rss, 'peak RSS').toBeLessThan(450);
      figures.maxRssMb = Math.max(figures.maxRssMb, rss);
      figures.typedErrors++;
      figures.cases.push(`${mode} (${o.result?.code}, ${rss} MB peak RSS)`);
    }, 120_000);
  }
});

describe('a full disk under filesystem staging', () => {
  it('fails with a typed error and writes no _SUCCESS for an incomplete slice', async () => {
    const dir = join(tmp, 'tmpfs');
    mkdirSync(dir, { recursive: true });
    let store: ObjectStore;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' });
      figures.fullDisk = 'tmpfs of 2 MiB';
      store = new FileSystemObjectStore({ root: dir });
    } catch {
      // No mount allowed: inject ENOSPC once 2 MiB went through the store.
      figures.fullDisk = 'injected ENOSPC after 2 MiB';
      store = enospcAfter(new FileSystemObjectStore({ root: dir }), 2 * 1024 * 1024);
    }
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: i, pad: 'z'.repeat(400) }));
    const err = await runUnit({
      source: new MemorySource({ units: { full: { rows } } }),
      sink: new MemorySink(),
      staging: new ObjectStoreStagingProvider({ store }),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'fulldisk', unitId: 'full' },
      mode: 'full',
      policy: { sliceMaxRows: 2000, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(IngestError.is(err), String(err)).toBe(true);
    expect(['staging_failed', 'disk_full']).toContain((err as IngestError).code);
    const files = filesUnder(dir);
    expect(files.filter((f) => f.endsWith('_SUCCESS'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('_LANDED'))).toEqual([]);
    figures.typedErrors++;
    figures.cases.push(`full disk (${figures.fullDisk}): ${(err as IngestError).code}`);
  }, 60_000);
});

/** Wrap a store so that puts fail with ENOSPC once `limit` bytes were written. */
function enospcAfter(store: ObjectStore, limit: number): ObjectStore {
  let written = 0;
  const enospc = () =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
    });
  return new Proxy(store, {
    get(t, p) {
      if (p === 'put') {
        return async (
          key: string,
          body: Uint8Array | AsyncIterable<Uint8Array>,
          opts?: Parameters<ObjectStore['put']>[2],
        ) => {
          async function* counted(src: AsyncIterable<Uint8Array>) {
            for await (const c of src) {
              written += c.byteLength;
              if (written > limit) throw enospc();
              yield c;
            }
          }
          if (body instanceof Uint8Array) {
            written += body.byteLength;
            if (written > limit) throw enospc();
            return t.put(key, body, opts);
          }
          return t.put(key, counted(body), opts);
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}
