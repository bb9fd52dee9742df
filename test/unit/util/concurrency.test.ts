import { describe, expect, it } from 'vitest';
import { SliceFeed } from '../../../src/pipeline/slice-feed.js';
import { runBounded } from '../../../src/util/concurrency.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('runBounded', () => {
  it('runs every item with at most `limit` at once, claimed in order', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await runBounded([1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i);
      peak = Math.max(peak, ++running);
      await tick(i % 3);
      running--;
    });
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(3);
  });

  it('the first failure stops new items, waits for the items in flight, then rethrows the first error', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const err = await runBounded([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 0) {
        await tick(1);
        throw new Error('first');
      }
      if (i === 1) {
        await tick(20);
        finished.push(i);
        throw new Error('second');
      }
      await tick(30);
      finished.push(i);
    }).catch((e) => e);
    expect(err.message).toBe('first');
    // item 1 was in flight when item 0 failed: it finished before runBounded returned; nothing after it started
    expect(finished).toEqual([1]);
    expect(started).toEqual([0, 1]);
  });

  it('an aborted signal stops claiming quietly; the items in flight finish', async () => {
    const ac = new AbortController();
    const done: number[] = [];
    await runBounded(
      [0, 1, 2, 3],
      1,
      async (i) => {
        if (i === 1) ac.abort();
        await tick();
        done.push(i);
      },
      { signal: ac.signal },
    );
    expect(done).toEqual([0, 1]);
  });

  it('extra workers are asked for but never awaited: the first worker does the work when none arrives', async () => {
    const never = new Promise<string>(() => {});
    const by: string[] = [];
    await runBounded(['a', 'b', 'c'], 3, async (_i, w) => void by.push(w), { first: 'own', more: () => never });
    expect(by).toEqual(['own', 'own', 'own']);
  });

  it('an extra worker that arrives joins while items are left, and is released (healthy or not) when done', async () => {
    const released: Array<[string, boolean]> = [];
    let n = 0;
    const by: Record<string, string[]> = {};
    const err = await runBounded(
      ['a', 'b', 'c', 'd', 'e', 'f'],
      2,
      async (item, w) => {
        (by[w] ??= []).push(item);
        await tick(5);
        if (item === 'f') throw new Error(`failed on ${w}`);
      },
      { first: 'own', more: async () => `extra${++n}`, release: (w, healthy) => released.push([w, healthy]) },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Object.keys(by).sort()).toEqual(['extra1', 'own']);
    expect(released).toEqual([['extra1', !err.message.endsWith('extra1')]]);
  });

  it('an extra worker that arrives after the work is over is released at once; a failed request is ignored', async () => {
    const released: string[] = [];
    let late!: (w: string) => void;
    let calls = 0;
    await runBounded(['a', 'b', 'c'], 3, async () => {}, {
      first: 'own',
      more: () => (++calls === 1 ? new Promise<string>((r) => (late = r)) : Promise.reject(new Error('pool empty'))),
      release: (w) => released.push(w),
    });
    late('late');
    await tick();
    expect(released).toEqual(['late']);
  });

  it('takes items from an async iterable as they arrive, at most `limit` at once', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    async function* arriving() {
      for (let i = 1; i <= 6; i++) {
        await tick(2);
        yield i;
      }
    }
    await runBounded(arriving(), 2, async (i) => {
      peak = Math.max(peak, ++running);
      await tick(5);
      done.push(i);
      running--;
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(peak).toBe(2);
  });

  it('treats an error of the async iterable as the first failure: items in flight finish, nothing new starts', async () => {
    const finished: number[] = [];
    async function* failing() {
      yield 1;
      yield 2;
      await tick(1);
      throw new Error('export failed');
    }
    await expect(
      runBounded(failing(), 2, async (i) => {
        await tick(10);
        finished.push(i);
      }),
    ).rejects.toThrow('export failed');
    expect(finished.sort()).toEqual([1, 2]);
  });
});

describe('SliceFeed', () => {
  const slice = (index: number) => ({ index, rows: 1, reader: { iterBatches: async function* () {} } });

  it('hands slices over in plan order when ordered, as staged otherwise', async () => {
    const ordered = new SliceFeed([0, 1, 2]);
    const any = new SliceFeed();
    for (const f of [ordered, any]) {
      f.push(slice(2));
      f.push(slice(0));
      f.push(slice(1));
      f.end();
    }
    const got = async (f: SliceFeed) => {
      const out: number[] = [];
      for await (const s of f) out.push(s.index);
      return out;
    };
    expect(await got(ordered)).toEqual([0, 1, 2]);
    expect(await got(any)).toEqual([2, 0, 1]);
  });

  it('waits for the next slice, and throws the export failure at the next pull', async () => {
    const feed = new SliceFeed([0, 1]);
    const it = feed[Symbol.asyncIterator]();
    const first = it.next();
    feed.push(slice(0));
    expect((await first).value?.index).toBe(0);
    const second = it.next();
    feed.fail(new Error('export failed'));
    await expect(second).rejects.toThrow('export failed');
  });
});
