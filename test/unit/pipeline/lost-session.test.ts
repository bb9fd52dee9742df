import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileKvStore, FileSystemObjectStore } from '../../../src/fs/index.js';
import {
  abandonRun,
  checkpointKey,
  IngestError,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  runUnit,
} from '../../../src/index.js';
import { receiptKey, runStateKey } from '../../../src/pipeline/keys.js';
import type { RunReceipt, RunState } from '../../../src/pipeline/run-state.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lost-session-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const WORKER = fileURLToPath(new URL('./workers/memory-staging-worker.ts', import.meta.url));
const rows = Array.from({ length: 20 }, (_, i) => ({ id: i + 1 }));

function runWorker(kvPath: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, kvPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('a pending run whose staged data is gone (ADR 0017)', () => {
  it('memory staging + a persistent KvStore: another process discards the run instead of failing not_found for ever', async () => {
    const kvPath = join(dir, 'kv-store.json');
    const first = await runWorker(kvPath);
    expect(first.err).toBe('');
    expect(JSON.parse(first.out)).toEqual({ code: 'sink_failed' });
    const kv = new FileKvStore({ path: kvPath });
    const cp = checkpointKey({ vendor: 'default', endpointId: 'mem', unitId: 'items' });
    const pending = (await kv.get(runStateKey(cp)))?.value as unknown as RunState;
    expect(pending).toMatchObject({
      phase: 'importing',
      stagingProvider: 'memory',
      stagingProcess: expect.any(String),
    });

    // this process: the other process's memory is gone; the run is superseded and a new one imports everything
    const sink = new MemorySink();
    const opts = {
      source: new MemorySource({ units: { items: { rows, cursorField: 'id' } } }),
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'mem', unitId: 'items' },
    };
    const res = await runUnit(opts);
    expect(res.runId).not.toBe(pending.runId);
    expect(sink.rows('items').map((r) => r.id)).toEqual(rows.map((r) => r.id));
    const receipt = (await kv.get(receiptKey(runStateKey(cp), pending.runId)))?.value as RunReceipt | undefined;
    expect(receipt?.outcome).toBe('superseded');
    // within one process a pending memory run still resumes as before
    expect((await kv.get(runStateKey(cp)))?.value).toMatchObject({ phase: 'committed' });
  }, 60_000);

  it('a swept session: not_found names abandonRun() and `nucleus-ingest abandon`; after abandoning, the unit runs again', async () => {
    const kv = new FileKvStore({ path: join(dir, 'kv.json') });
    const store = new FileSystemObjectStore({ root: join(dir, 'stage') });
    const staging = new ObjectStoreStagingProvider({ store, prefix: 'stage' });
    const good = new MemorySink();
    const broken = {
      descriptor: good.descriptor,
      async import(): Promise<never> {
        throw new Error('target gone');
      },
    };
    const base = {
      source: new MemorySource({ units: { items: { rows, cursorField: 'id' } } }),
      staging,
      kv,
      unit: { endpointId: 'mem', unitId: 'items' },
    };
    expect(await runUnit({ ...base, sink: broken }).catch((e) => e.code)).toBe('sink_failed');
    // the staged data disappears (swept, bucket emptied)
    await rm(join(dir, 'stage', 'stage'), { recursive: true, force: true });
    const err = await runUnit({ ...base, sink: good }).catch((e) => e);
    expect(IngestError.is(err, 'not_found')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('abandonRun(');
    expect(err.message).toContain('nucleus-ingest abandon');
    expect(err.details).toMatchObject({ remedy: 'abandonRun', phase: 'importing' });
    const abandoned = await abandonRun({ kv, staging, unit: base.unit });
    expect(abandoned).toMatchObject({ phase: 'importing', partlyImported: true, sessionMarked: false });
    const ok = await runUnit({ ...base, sink: good });
    expect(ok.stats.rowsImported).toBe(20);
  });
});
