import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingProvider } from '../contracts/staging.js';
import type { Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { testContext } from './context.js';

/** Options of {@link describeStagingProvider}. @public */
export interface DescribeStagingProviderOptions {
  /** Called once after the suite (close pools, drop schemas). */
  teardown?: () => Promise<void> | void;
  /** Rows in the "many rows" test. @defaultValue 5000 */
  manyRows?: number;
}

/** Rows with every value type the contract promises to round-trip. @public */
export function fidelityRows(): Row[] {
  const proto = JSON.parse('{"__proto__": {"polluted": true}, "constructor": "c", "ok": 1}');
  return [
    {
      id: 1n,
      big: 9007199254740993n,
      neg: -42n,
      name: 'Ada',
      empty: '',
      unicode: 'ü€😀 \u2028 "quoted" \\ back',
      int: 42,
      float: 3.25,
      bool: true,
      nil: null,
      when: new Date('2024-02-29T12:34:56.789Z'),
      bytes: new Uint8Array([0, 1, 2, 254, 255]),
      nested: { list: [1, 'two', null, { three: 3n }], when: new Date(0) },
      looksTagged: { $date: '2020-01-01T00:00:00.000Z' },
      proto,
    },
    { id: 2n, name: 'Grace', nil: null, nested: [], bytes: new Uint8Array(), when: new Date(-1) },
  ];
}

/**
 * The StagingProvider contract suite: round-trip fidelity, slice semantics, sealing, reopening from a ref,
 * destroy and sweep. Run it against your own provider in vitest.
 *
 * @example
 * ```ts
 * import { describeStagingProvider } from '@nucleus/ingestion/testing/vitest';
 * import { MemoryStagingProvider } from '@nucleus/ingestion';
 * describeStagingProvider('memory', () => new MemoryStagingProvider());
 * ```
 * @public
 */
export function describeStagingProvider(
  name: string,
  factory: () => StagingProvider | Promise<StagingProvider>,
  opts: DescribeStagingProviderOptions = {},
): void {
  describe(`StagingProvider contract: ${name}`, () => {
    let provider: StagingProvider;
    beforeAll(async () => {
      provider = await factory();
    });
    afterAll(async () => {
      await opts.teardown?.();
    });

    const collect = async (reader: { iterBatches(n: number): AsyncIterable<Row[]> }, chunk = 1000) => {
      const batches: Row[][] = [];
      for await (const b of reader.iterBatches(chunk)) batches.push(b);
      return batches;
    };

    it('round-trips every value type exactly, in order', async () => {
      const session = await provider.allocateSession(testContext());
      const rows = fidelityRows();
      const w = session.writer({ slice: 0 });
      await w.writeBatch(rows);
      await w.close();
      await session.seal();
      const out = (await collect(session.reader())).flat();
      expect(out).toEqual(rows);
      expect(typeof out[0].id).toBe('bigint');
      expect(out[0].when).toBeInstanceOf(Date);
      expect(out[0].bytes).toBeInstanceOf(Uint8Array);
      const proto = out[0].proto as Record<string, unknown>;
      expect(Object.hasOwn(proto, '__proto__')).toBe(true);
      expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await session.close();
    });

    it('is not changed by mutating rows after writeBatch', async () => {
      const session = await provider.allocateSession(testContext());
      const row: Row = { id: 1, tags: ['a'], when: new Date(1000) };
      const w = session.writer({ slice: 0 });
      await w.writeBatch([row]);
      row.id = 2;
      (row.tags as string[]).push('b');
      (row.when as Date).setTime(0);
      await w.close();
      await session.seal();
      expect((await collect(session.reader())).flat()).toEqual([{ id: 1, tags: ['a'], when: new Date(1000) }]);
    });

    it('reads slices in index order, re-chunked to the requested size', async () => {
      const session = await provider.allocateSession(testContext());
      const total = opts.manyRows ?? 5000;
      const mk = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({ n: from + i, s: `row ${from + i}` }));
      const third = Math.floor(total / 3);
      // Written out of order and concurrently.
      const w2 = session.writer({ slice: 2 });
      const w0 = session.writer({ slice: 0 });
      const w1 = session.writer({ slice: 1 });
      await Promise.all([
        w2.writeBatch(mk(2 * third, total - 2 * third)),
        w0.writeBatch(mk(0, third)),
        w1.writeBatch(mk(third, third)),
      ]);
      await Promise.all([w2.close(), w1.close(), w0.close()]);
      await session.seal();
      const batches = await collect(session.reader(), 777);
      expect(batches.slice(0, -1).every((b) => b.length <= 777)).toBe(true);
      expect(batches.flat().map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i));
      const one = (await collect(session.reader({ slice: 1 }), 100)).flat();
      expect(one.map((r) => r.n)).toEqual(Array.from({ length: third }, (_, i) => third + i));
      const desc = await session.describe();
      expect(desc.slices.map((s) => s.index)).toEqual([0, 1, 2]);
      expect(desc.slices.map((s) => s.rows)).toEqual([third, third, total - 2 * third]);
      expect(desc.rows).toBe(total);
      expect(desc.sealed).toBe(true);
      expect(desc.landed).toBe(false);
      expect(await session.handles()).toHaveLength(3);
    });

    it('keeps empty batches and empty slices harmless', async () => {
      const session = await provider.allocateSession(testContext());
      const w = session.writer({ slice: 0 });
      await w.writeBatch([]);
      await w.writeBatch([{ a: '' }]);
      await w.writeBatch([]);
      await w.close();
      const e = session.writer({ slice: 1 });
      await e.close();
      await session.seal();
      expect((await collect(session.reader())).flat()).toEqual([{ a: '' }]);
      expect((await session.describe()).slices.map((s) => s.rows)).toEqual([1, 0]);
    });

    it('replaces a slice written again and records nothing for an aborted writer', async () => {
      const session = await provider.allocateSession(testContext());
      const a = session.writer({ slice: 0 });
      await a.writeBatch([{ v: 'old' }]);
      await a.close();
      const b = session.writer({ slice: 0 });
      await b.writeBatch([{ v: 'new' }]);
      await b.close();
      const c = session.writer({ slice: 1 });
      await c.writeBatch([{ v: 'dropped' }]);
      await c.abort?.();
      await session.seal();
      expect((await collect(session.reader())).flat()).toEqual(
        c.abort ? [{ v: 'new' }] : [{ v: 'new' }, { v: 'dropped' }],
      );
    });

    it('refuses writers after seal and reuse of a closed writer', async () => {
      const session = await provider.allocateSession(testContext());
      const w = session.writer({ slice: 0 });
      await w.writeBatch([{ a: 1 }]);
      await w.close();
      await expect(w.writeBatch([{ a: 2 }])).rejects.toBeInstanceOf(IngestError);
      await session.seal();
      let err: unknown;
      try {
        const late = session.writer({ slice: 1 });
        await late.writeBatch([{ a: 3 }]);
        await late.close();
      } catch (e) {
        err = e;
      }
      expect(IngestError.is(err)).toBe(true);
      expect(String((err as Error).message)).toContain(session.id);
    });

    it('reopens a session from its JSON ref', async () => {
      const session = await provider.allocateSession(testContext());
      const w = session.writer({ slice: 0 });
      await w.writeBatch([{ id: 7n, at: new Date(5) }]);
      await w.close();
      await session.seal();
      await session.close();
      const ref = JSON.parse(JSON.stringify(session.ref));
      const again = await provider.openSession(ref);
      expect(again.id).toBe(session.id);
      expect((await collect(again.reader())).flat()).toEqual([{ id: 7n, at: new Date(5) }]);
      await again.markLanded();
      expect((await again.describe()).landed).toBe(true);
    });

    it('allocating the same run again finds the same place', async () => {
      const ctx = testContext();
      const s1 = await provider.allocateSession(ctx);
      const w = s1.writer({ slice: 0 });
      await w.writeBatch([{ x: 1 }]);
      await w.close();
      const s2 = await provider.allocateSession(ctx);
      expect(s2.id).toBe(s1.id);
      expect((await s2.describe()).slices.map((s) => s.index)).toEqual([0]);
    });

    it('destroy deletes the staged data', async () => {
      const session = await provider.allocateSession(testContext());
      const w = session.writer({ slice: 0 });
      await w.writeBatch([{ x: 1 }]);
      await w.close();
      await session.seal();
      await session.destroy();
      await session.destroy();
      const ref = session.ref;
      const reopened = await provider.openSession(ref).catch((e) => e);
      if (IngestError.is(reopened)) expect(reopened.code).toBe('not_found');
      else expect((await reopened.describe()).slices).toHaveLength(0);
    });

    it('sweep deletes landed runs past the TTL, spares what keep vetoes and fresh unlanded runs', async () => {
      const landed = await provider.allocateSession(testContext({ endpointId: 'sweep-ep' }));
      const w = landed.writer({ slice: 0 });
      await w.writeBatch([{ x: 1 }]);
      await w.close();
      await landed.seal();
      await landed.markLanded();
      const vetoed = await provider.allocateSession(testContext({ endpointId: 'sweep-ep' }));
      await vetoed.seal();
      await vetoed.markLanded();
      const pending = await provider.allocateSession(testContext({ endpointId: 'sweep-ep' }));
      await pending.seal();
      await new Promise((r) => setTimeout(r, 20));
      const report = await provider.sweep({
        olderThanMs: 1,
        abandonedAfterMs: 60 * 60_000,
        keep: (ref) => ref.runId === vetoed.ref.runId,
      });
      const deleted = report.deleted.map((r) => r.runId);
      expect(deleted).toContain(landed.ref.runId);
      expect(deleted).not.toContain(vetoed.ref.runId);
      expect(deleted).not.toContain(pending.ref.runId);
      expect(report.sessionsDeleted).toBeGreaterThanOrEqual(1);
      const gone = await provider
        .openSession(landed.ref)
        .then((s) => s.describe())
        .catch((e) => e);
      if (IngestError.is(gone)) expect(gone.code).toBe('not_found');
      else expect(gone.slices).toHaveLength(0);
      expect((await (await provider.openSession(vetoed.ref)).describe()).landed).toBe(true);
    });

    it('refuses a non-positive chunk size', async () => {
      const session = await provider.allocateSession(testContext());
      await session.seal();
      await expect(collect(session.reader(), 0)).rejects.toSatisfy((e) => IngestError.is(e, 'config_invalid'));
    });
  });
}
