/**
 * Seal, describe and the markers retry transient staging failures under the run's `policy.retry`, as slice writes
 * do: a failed `_SUCCESS`, a failed listing during the seal, a failed `_LANDED` no longer end (or degrade) a run
 * whose retry budget covers them. Non-retryable failures are not retried, and a run out of retries resumes cleanly.
 */
import { describe, expect, it } from 'vitest';
import {
  abandonRun,
  exportUnit,
  IngestError,
  type IngestionEvent,
  MemoryObjectStore,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreStagingProvider,
  type PutOptions,
  runUnit,
} from '../../../src/index.js';
import { ids, memoryRun, range } from './helpers.js';

type Op = 'put' | 'get' | 'head' | 'list' | 'delete';
interface Rule {
  op: Op;
  match: RegExp;
  times: number;
  retryable: boolean;
  /** Matching requests let through before the first fault. */
  after?: number;
}

/** A memory object store whose requests fail on demand, the way an S3 request past its own retries does. */
class FlakyStore implements ObjectStore {
  readonly inner = new MemoryObjectStore();
  rules: Rule[] = [];
  readonly injected: string[] = [];
  get bucket() {
    return this.inner.bucket;
  }
  #hit(op: Op, key: string): void {
    const rule = this.rules.find((r) => r.op === op && r.times > 0 && r.match.test(key));
    if (!rule) return;
    if (rule.after) {
      rule.after--;
      return;
    }
    rule.times--;
    this.injected.push(`${op} ${key}`);
    throw new IngestError('staging_failed', `injected: ${op} of ${key} failed`, { retryable: rule.retryable });
  }
  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<ObjectInfo> {
    this.#hit('put', key);
    return this.inner.put(key, body, opts);
  }
  async get(key: string, opts?: { signal?: AbortSignal }) {
    this.#hit('get', key);
    return this.inner.get(key, opts);
  }
  async head(key: string) {
    this.#hit('head', key);
    return this.inner.head(key);
  }
  async *list(prefix: string) {
    this.#hit('list', prefix);
    yield* this.inner.list(prefix);
  }
  async delete(keys: string[]) {
    this.#hit('delete', keys[0] ?? '');
    return this.inner.delete(keys);
  }
}

function setup(rules: Rule[], retry: number) {
  const store = new FlakyStore();
  const m = memoryRun({ staging: new ObjectStoreStagingProvider({ store, prefix: 'stage' }) });
  store.rules = rules;
  const opts = {
    ...m.base,
    policy: { ...m.base.policy, retry: { maxAttempts: retry, baseDelayMs: 1, maxDelayMs: 5 } },
  };
  const retries = (phase: string) =>
    m.events.filter(
      (e): e is Extract<IngestionEvent, { type: 'retry.scheduled' }> =>
        e.type === 'retry.scheduled' && e.phase === phase,
    );
  const markers = async (name: string) => {
    const keys: string[] = [];
    for await (const o of store.inner.list('stage/')) if (o.key.endsWith(`/${name}`)) keys.push(o.key);
    return keys;
  };
  return { ...m, store, opts, retries, markers };
}

describe('seal, describe and markers under policy.retry', () => {
  it('a _SUCCESS write failing twice is retried; the run commits every row once', async () => {
    const t = setup([{ op: 'put', match: /\/_SUCCESS$/, times: 2, retryable: true }], 3);
    const result = await runUnit(t.opts);
    expect(t.store.injected).toHaveLength(2);
    expect(result.stats.rowsImported).toBe(250);
    expect(ids(t.sink.rows('users'))).toEqual(range(1, 250));
    const r = t.retries('export');
    expect(r).toHaveLength(2);
    expect(r.every((e) => e.code === 'staging_failed' && e.slice === undefined)).toBe(true);
  });

  it('a listing failing during the seal (its orphan sweep) is retried', async () => {
    const t = setup([{ op: 'list', match: /^stage\//, times: 2, retryable: true }], 3);
    const result = await runUnit(t.opts);
    expect(t.store.injected).toHaveLength(2);
    expect(result.stats.rowsImported).toBe(250);
    expect(t.retries('export')).toHaveLength(2);
  });

  it('a marker read failing while the export describes the session is retried', async () => {
    // the first describe (run start, run-unit.ts) is let through; the export step's describe fails once
    const t = setup([{ op: 'head', match: /\/_SUCCESS$/, times: 1, retryable: true, after: 1 }], 2);
    const result = await runUnit(t.opts);
    expect(t.store.injected).toHaveLength(1);
    expect(result.stats.rowsImported).toBe(250);
    expect(t.retries('export')).toHaveLength(1);
  });

  it('a _LANDED write failing twice is retried: the committed run leaves its _LANDED', async () => {
    const t = setup([{ op: 'put', match: /\/_LANDED$/, times: 2, retryable: true }], 3);
    const result = await runUnit({ ...t.opts, policy: { ...t.opts.policy, keepStaging: true } });
    expect(result.stats.rowsImported).toBe(250);
    expect(t.store.injected).toHaveLength(2);
    expect(t.retries('commit')).toHaveLength(2);
    expect(await t.markers('_LANDED')).toHaveLength(1);
  });

  it('a non-retryable seal failure is not retried; the next call resumes and commits every row once', async () => {
    const t = setup([{ op: 'put', match: /\/_SUCCESS$/, times: 1, retryable: false }], 3);
    const err = await runUnit(t.opts).catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed', retryable: false });
    expect(t.retries('export')).toEqual([]);
    const result = await runUnit(t.opts);
    expect(result.stats.rowsImported).toBe(250);
    expect(ids(t.sink.rows('users'))).toEqual(range(1, 250));
  });

  it('out of retries the run fails retryably; the next call resumes and commits every row once', async () => {
    const t = setup([{ op: 'put', match: /\/_SUCCESS$/, times: 2, retryable: true }], 2);
    const err = await runUnit(t.opts).catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed', retryable: true });
    expect(t.retries('export')).toHaveLength(1);
    const result = await runUnit(t.opts);
    expect(result.stats.rowsImported).toBe(250);
    expect(ids(t.sink.rows('users'))).toEqual(range(1, 250));
  });
});

describe('abandonRun marks the session under the default policy.retry', () => {
  it('an _ABANDONED write failing twice is retried: the session is marked for sweeping', async () => {
    const t = setup([], 1);
    await exportUnit(t.opts);
    t.store.rules = [{ op: 'put', match: /\/_ABANDONED$/, times: 2, retryable: true }];
    const dropped = await abandonRun({ kv: t.kv, staging: t.opts.staging, unit: t.opts.unit });
    expect(t.store.injected).toHaveLength(2);
    expect(dropped.sessionMarked).toBe(true);
    expect(await t.markers('_ABANDONED')).toHaveLength(1);
  });

  it('a non-retryable failure is not retried: the run is abandoned, the session left to the sweep', async () => {
    const t = setup([], 1);
    await exportUnit(t.opts);
    t.store.rules = [{ op: 'put', match: /\/_ABANDONED$/, times: 1, retryable: false }];
    const dropped = await abandonRun({ kv: t.kv, staging: t.opts.staging, unit: t.opts.unit });
    expect(t.store.injected).toHaveLength(1);
    expect(dropped.sessionMarked).toBe(false);
    expect(await t.markers('_ABANDONED')).toHaveLength(0);
  });
});
