/**
 * A live slice (src/pipeline/live-slice.ts; ADR 0018, "live slices"): the sink reads a slice's chunks while the export
 * stages them. Its reader ends only once the slice is staged; the export keeps pace with a sink that reads; a sink
 * that has not started reading is never waited for (the reader then takes the rest from staging, verified); a failed
 * export attempt fails the reader.
 */
import { describe, expect, it } from 'vitest';
import {
  IngestError,
  MemoryObjectStore,
  ndjsonCodec,
  ObjectStoreStagingProvider,
  type StagedSlice,
  type StagingSession,
} from '../../../src/index.js';
import { LiveSlice } from '../../../src/pipeline/live-slice.js';
import { testContext } from '../../../src/testing/index.js';

/** NDJSON lines of `n` rows, all of one length, cut into chunks of `per` lines. */
function chunks(n: number, per: number, tag = 'a'): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i += per) {
    let s = '';
    for (let j = i; j < Math.min(n, i + per); j++)
      s += `{"id":${String(j).padStart(5, ' ')},"v":"${tag}${String(j).padStart(5, '0')}"}\n`;
    out.push(Buffer.from(s));
  }
  return out;
}

const concat = (parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

/**
 * A session with slice 0 staged from `parts` (what the export's writer does with the same chunks); `damage` then
 * rewrites the staged object's bytes in the store.
 */
async function staged(
  parts: Uint8Array[],
  damage?: (bytes: Buffer) => Buffer,
): Promise<{ session: StagingSession; slice: StagedSlice }> {
  const store = new MemoryObjectStore();
  const staging = new ObjectStoreStagingProvider({ store, codec: ndjsonCodec() });
  const session = await staging.allocateSession(testContext({ runId: 'r1' }));
  const w = session.writer({ slice: 0 });
  for (const p of parts) await w.writeEncoded!(p);
  await w.close();
  const slice = (await session.describe()).slices.find((s) => s.index === 0)!;
  if (damage) {
    let key = '';
    for await (const o of store.list('')) if (/\.ndjson$/.test(o.key)) key = o.key;
    expect(key).not.toBe('');
    const got: Uint8Array[] = [];
    for await (const c of await store.get(key)) got.push(c);
    await store.put(key, damage(concat(got)));
  }
  return { session, slice };
}

async function readAll(it: AsyncIterable<Uint8Array>, got: Uint8Array[] = []): Promise<Buffer> {
  for await (const c of it) got.push(c);
  return concat(got);
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('LiveSlice', () => {
  it('gives the chunks as they are written, and ends only once the slice is staged', async () => {
    const parts = chunks(300, 50);
    const { session, slice } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    const got: Uint8Array[] = [];
    let ended = false;
    const reading = readAll(live.importSlice().reader.iterEncoded!(), got).then((b) => {
      ended = true;
      return b;
    });
    for (const p of parts) {
      expect(live.write(p)).toBeUndefined();
      await tick();
    }
    live.complete();
    await tick();
    // every chunk reached the reader, the end did not: the slice is not staged yet
    expect(concat(got)).toEqual(concat(parts));
    expect(ended).toBe(false);
    live.seal(slice);
    expect(await reading).toEqual(concat(parts));
    expect(live.importSlice().rows).toBe(300);
  });

  it('a reader that reads: the export waits past the limit until the sink took half', async () => {
    const parts = chunks(400, 10);
    const size = parts[0].byteLength;
    const { session, slice } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 4 * size, 1 << 20);
    const it = live.importSlice().reader.iterEncoded!()[Symbol.asyncIterator]();
    const first = it.next();
    const paced: Array<Promise<void> | undefined> = [];
    for (let i = 0; i < 6; i++) paced.push(live.write(parts[i]));
    // the reader took the first chunk at once (it was waiting); the rest fill the queue past four chunks
    expect((await first).value).toEqual(parts[0]);
    const wait = paced.find((p) => p !== undefined);
    expect(wait).toBeInstanceOf(Promise);
    let released = false;
    void wait!.then(() => {
      released = true;
    });
    await tick();
    expect(released).toBe(false);
    // the sink takes chunks: at half the limit the export goes on
    for (let i = 1; i <= 3; i++) expect((await it.next()).value).toEqual(parts[i]);
    await tick();
    expect(released).toBe(true);
    // the rest is written while the sink reads: the export waits whenever four chunks are held
    const writing = (async () => {
      for (let i = 6; i < parts.length; i++) await live.write(parts[i]);
      live.complete();
      live.seal(slice);
    })();
    const rest: Uint8Array[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    await writing;
    expect(concat([...parts.slice(0, 4), ...rest])).toEqual(concat(parts));
  });

  it('a sink that has not started reading is never waited for: the rest comes from staging, the given bytes skipped', async () => {
    const parts = chunks(1000, 10);
    const size = parts[0].byteLength;
    const { session, slice } = await staged(parts);
    // holds five chunks for a sink that does not read yet
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 2 * size, 5 * size);
    for (const p of parts) expect(live.write(p)).toBeUndefined();
    live.complete();
    const reader = live.importSlice().reader.iterEncoded!();
    const got: Uint8Array[] = [];
    const reading = readAll(reader, got);
    await tick();
    // the five held chunks were given; the rest waits for the slice to be staged
    expect(concat(got)).toEqual(concat(parts.slice(0, 5)));
    live.seal(slice);
    expect(await reading).toEqual(concat(parts));
  });

  it('the staged rest is verified: a slice damaged in staging fails the reader with staging_corrupt', async () => {
    const parts = chunks(1000, 10);
    const size = parts[0].byteLength;
    // one byte of the staged object changes
    const { session, slice } = await staged(parts, (bytes) => {
      bytes[bytes.length - 10] ^= 1;
      return bytes;
    });
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 2 * size, 5 * size);
    for (const p of parts) live.write(p);
    live.complete();
    live.seal(slice);
    await expect(readAll(live.importSlice().reader.iterEncoded!())).rejects.toMatchObject({ code: 'staging_corrupt' });
  });

  it('a slice the sink read live is not read from staging again: a staged copy damaged later does not fail it', async () => {
    const parts = chunks(300, 50);
    const { session, slice } = await staged(parts, () => Buffer.from('{"id":1}\n'));
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    const reading = readAll(live.importSlice().reader.iterEncoded!());
    for (const p of parts) live.write(p);
    live.complete();
    await tick();
    live.seal(slice);
    expect(await reading).toEqual(concat(parts));
  });

  it('sealed before the sink read a byte: nothing is held, the whole slice comes from staging', async () => {
    const parts = chunks(200, 20);
    const { session, slice } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    for (const p of parts) live.write(p);
    live.complete();
    live.seal(slice);
    expect(await readAll(live.importSlice().reader.iterEncoded!())).toEqual(concat(parts));
  });

  it('an attempt that fails before the sink took a byte fails the reader too (the sink may hold a connection the retry needs)', async () => {
    const parts = chunks(100, 10);
    const { session } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    for (const p of parts.slice(0, 3)) live.write(p);
    live.fail(new Error('connection reset'));
    expect(live.lost).toBe(true);
    // later writes (a retry) do not reach this reader
    expect(live.write(parts[3])).toBeUndefined();
    await expect(readAll(live.importSlice().reader.iterEncoded!())).rejects.toMatchObject({
      code: 'source_failed',
      retryable: true,
    });
  });

  it('an attempt that fails after the sink took a byte fails the reader (source_failed, retryable)', async () => {
    const parts = chunks(100, 10);
    const { session } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    const it = live.importSlice().reader.iterEncoded!()[Symbol.asyncIterator]();
    const first = it.next();
    live.write(parts[0]);
    expect((await first).value).toEqual(parts[0]);
    live.fail(new Error('connection reset'));
    expect(live.lost).toBe(true);
    const err = await it.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IngestError);
    expect(err).toMatchObject({ code: 'source_failed', retryable: true, details: { slice: 0 } });
  });

  it('a run that stops fails a waiting reader with its reason, and lets a waiting export go on', async () => {
    const parts = chunks(100, 10);
    const size = parts[0].byteLength;
    const { session } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), size, 1 << 20);
    const it = live.importSlice().reader.iterEncoded!()[Symbol.asyncIterator]();
    const first = it.next();
    live.write(parts[0]);
    await first;
    live.write(parts[1]);
    const wait = live.write(parts[2]);
    expect(wait).toBeInstanceOf(Promise);
    const reason = new IngestError('aborted', 'stopped (test)');
    live.abandon(reason);
    await wait;
    // the two held chunks are dropped with the run
    await expect(it.next()).rejects.toBe(reason);
  });

  it('a sink that takes rows reads the staged slice once it is staged', async () => {
    const parts = chunks(120, 30);
    const { session, slice } = await staged(parts);
    const live = new LiveSlice(0, 'ndjson', () => session.reader({ slice: 0 }), 1 << 20, 1 << 20);
    const rows: unknown[] = [];
    const reading = (async () => {
      for await (const batch of live.importSlice().reader.iterBatches(50)) rows.push(...batch);
    })();
    for (const p of parts) live.write(p);
    live.complete();
    await tick();
    expect(rows).toHaveLength(0);
    live.seal(slice);
    await reading;
    expect(rows).toHaveLength(120);
    expect(rows[119]).toEqual({ id: 119, v: 'a00119' });
  });
});
