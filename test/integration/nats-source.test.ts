/**
 * JetStreamSource against the machine's NATS JetStream and PostgreSQL: rows with their stream metadata, checkpoints
 * by stream sequence, bounded runs, poison messages (fail or dead-letter), replay, lag.
 */
import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  type IngestError,
  MemoryKvStore,
  MemoryStagingProvider,
  type RejectedRow,
  runUnit,
} from '../../src/index.js';
import { type JetStreamCheckpoint, JetStreamSource } from '../../src/nats/index.js';
import { PostgresSink } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { useNats } from '../helpers/nats.js';
import { usePostgres } from '../helpers/pg.js';

const pg = usePostgres('nats');
const nats = useNats();

function setup(stream: string, units: ConstructorParameters<typeof JetStreamSource>[0]['units'], extra = {}) {
  const source = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units, ...extra });
  const sink = new PostgresSink({ pool: pg.newPool(), schema: pg.schema });
  const kv = new MemoryKvStore();
  const staging = new MemoryStagingProvider();
  return { source, sink, kv, staging };
}

describe('JetStreamSource → PostgreSQL', () => {
  it('stages each message once with subject, sequence, time and headers; the next run reads only what is new', async () => {
    const stream = await nats.stream();
    const { source, sink, kv, staging } = setup(stream, { orders: { subjects: [`${stream}.orders.>`] } });
    await nats.publish(`${stream}.other`, [{ id: 999 }]); // outside the unit's filter
    const seqs = await nats.publish(
      `${stream}.orders.created`,
      Array.from({ length: 25 }, (_, i) => ({ id: i + 1, name: `n${i + 1}`, big: 9007199254740993n.toString() })),
      { 'x-trace': 'abc' },
    );
    const unit = { endpointId: 'nats', unitId: 'orders' };
    const r1 = await runUnit({ source, sink, kv, staging, unit });
    expect(r1.stats.rowsImported).toBe(25);
    expect(r1.newCheckpoint).toEqual({ stream, seq: seqs.at(-1) });
    const { rows } = await pg.query(
      `SELECT id, name, subject, stream_seq, headers, timestamp FROM "${pg.schema}".orders ORDER BY stream_seq`,
    );
    expect(rows).toHaveLength(25);
    expect(rows[0]).toMatchObject({
      id: 1,
      name: 'n1',
      subject: `${stream}.orders.created`,
      stream_seq: String(seqs[0]),
      headers: { 'x-trace': 'abc' },
    });
    expect(rows[0].timestamp).toBeInstanceOf(Date);
    const types = await pg.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders'`,
      [pg.schema],
    );
    const typeOf = Object.fromEntries(types.rows.map((r) => [r.column_name, r.data_type]));
    expect(typeOf).toMatchObject({ stream_seq: 'bigint', subject: 'text', timestamp: 'timestamp with time zone' });

    // nothing new: an empty run that leaves the checkpoint
    const r2 = await runUnit({ source, sink, kv, staging, unit });
    expect(r2.stats.rowsExported).toBe(0);
    expect(r2.newCheckpoint).toEqual(r1.newCheckpoint);

    const more = await nats.publish(`${stream}.orders.updated`, [
      { id: 26, name: 'n26' },
      { id: 27, name: 'n27' },
    ]);
    expect(await source.pending('orders', r1.newCheckpoint as JetStreamCheckpoint)).toBe(2);
    const r3 = await runUnit({ source, sink, kv, staging, unit });
    expect(r3.stats.rowsImported).toBe(2);
    expect(r3.newCheckpoint).toEqual({ stream, seq: more[1] });
    const count = await pg.query(
      `SELECT count(*)::int AS n, count(DISTINCT stream_seq)::int AS d FROM "${pg.schema}".orders`,
    );
    expect(count.rows[0]).toEqual({ n: 27, d: 27 });
    expect(await source.pending('orders', r3.newCheckpoint as JetStreamCheckpoint)).toBe(0);
    await source.close();
  });

  it('a run stops at maxMessages; runs in a row take every message exactly once', async () => {
    const stream = await nats.stream();
    const { source, sink, kv, staging } = setup(stream, { ev: {} }, { maxMessages: 40, fetchBatch: 15 });
    await nats.publish(
      `${stream}.a`,
      Array.from({ length: 100 }, (_, i) => ({ n: i })),
    );
    const unit = { endpointId: 'nats', unitId: 'ev' };
    const counts: number[] = [];
    for (let i = 0; i < 4; i++) counts.push((await runUnit({ source, sink, kv, staging, unit })).stats.rowsImported);
    expect(counts).toEqual([40, 40, 20, 0]);
    const { rows } = await pg.query(`SELECT count(*)::int AS n, count(DISTINCT n)::int AS d FROM "${pg.schema}".ev`);
    expect(rows[0]).toEqual({ n: 100, d: 100 });
    await source.close();
  });

  it('a run stops at the message that reaches maxBytes', async () => {
    const stream = await nats.stream();
    const payload = (n: number) => ({ n, pad: 'x'.repeat(84) }); // 100 bytes of JSON each
    await nats.publish(
      `${stream}.a`,
      Array.from({ length: 10 }, (_, i) => payload(i)),
    );
    const ctx = testContext({ unitId: 'b' });
    const seqsOf = async (s: JetStreamSource) => {
      const out: number[] = [];
      for await (const b of s.read({ unitId: 'b', mode: 'incremental', checkpoint: null }, ctx))
        out.push(...b.rows.map((r) => Number(r.stream_seq)));
      await s.close();
      return out;
    };
    const bytes = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units: { b: { maxBytes: 250 } } });
    expect(JSON.stringify(payload(1)).length).toBe(100);
    expect(await seqsOf(bytes)).toEqual([1, 2, 3]);
  });

  it('messages removed by the stream limits during a read end it after an idle pause, with what it took', async () => {
    const stream = await nats.stream();
    await nats.publish(
      `${stream}.a`,
      Array.from({ length: 12 }, (_, i) => ({ n: i })),
    );
    const ctx = testContext({ unitId: 'g' });
    const s = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units: { g: {} }, fetchBatch: 2 });
    const seqs: number[] = [];
    let purged = false;
    for await (const b of s.read({ unitId: 'g', mode: 'incremental', checkpoint: null }, ctx)) {
      seqs.push(...b.rows.map((r) => Number(r.stream_seq)));
      expect(b.checkpoint?.seq).toBe(seqs.at(-1));
      if (!purged) {
        purged = true;
        await nats.jsm.streams.purge(stream);
      }
    }
    expect(seqs.slice(0, 2)).toEqual([1, 2]);
    expect(seqs.length).toBeLessThan(12);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // in order, no gap among what was taken
    await s.close();
  }, 30_000);

  it('a poison message fails the run with row_rejected by default, checkpoint untouched', async () => {
    const stream = await nats.stream();
    const { source, sink, kv, staging } = setup(stream, { p: {} });
    await nats.publish(`${stream}.a`, [{ ok: 1 }, '{not json', { ok: 2 }]);
    const unit = { endpointId: 'nats', unitId: 'p' };
    const err = (await runUnit({ source, sink, kv, staging, unit }).catch((e) => e)) as IngestError;
    expect(err.code).toBe('row_rejected');
    expect(err.message).toContain('sequence 2');
    expect(await kv.get(checkpointKey({ vendor: 'default', ...unit }))).toBeUndefined();
    await source.close();
  });

  it("poison messages go to the dead-letter sink with subject and sequence under onRejectedRow: 'dead-letter'", async () => {
    const stream = await nats.stream();
    const { source, sink, kv, staging } = setup(stream, { d: {} });
    const seqs = await nats.publish(`${stream}.x`, [
      { id: 1 },
      '{broken',
      [1, 2],
      { id: 2, blob: 'y'.repeat(5000) },
      { id: 3 },
      { subject: 'collides' },
    ]);
    const dead: RejectedRow[] = [];
    const unit = { endpointId: 'nats', unitId: 'd' };
    const r = await runUnit({
      source,
      sink,
      kv,
      staging,
      unit,
      deadLetter: { write: async (rows) => void dead.push(...rows) },
      policy: { onRejectedRow: 'dead-letter', maxRowBytes: 2000 },
    });
    expect(r.stats.rowsImported).toBe(2);
    expect(r.newCheckpoint).toEqual({ stream, seq: seqs.at(-1) });
    expect(dead.map((d) => d.position)).toEqual(
      [1, 2, 3, 5].map((i) => ({ stream, subject: `${stream}.x`, seq: seqs[i] })),
    );
    expect(dead[0].reason).toMatch(/not valid JSON/);
    expect(dead[1].reason).toMatch(/not a JSON object/);
    expect(dead[2]).toMatchObject({ code: 'row_rejected', details: { maxRowBytes: 2000 } });
    expect(dead[3].reason).toMatch(/metadata column/);
    const { rows } = await pg.query(`SELECT id FROM "${pg.schema}".d ORDER BY id`);
    expect(rows.map((x) => x.id)).toEqual([1, 3]);
    await source.close();
  });

  it('a run of poison messages only, dead-lettered, moves the checkpoint and creates nothing odd in the target', async () => {
    const stream = await nats.stream();
    const { source, sink, kv, staging } = setup(stream, { only: {} });
    const seqs = await nats.publish(`${stream}.x`, ['{bad', 'also bad']);
    const dead: RejectedRow[] = [];
    const unit = { endpointId: 'nats', unitId: 'only' };
    const opts = {
      source,
      sink,
      kv,
      staging,
      unit,
      deadLetter: { write: async (rows: RejectedRow[]) => void dead.push(...rows) },
      policy: { onRejectedRow: 'dead-letter' as const },
    };
    const r = await runUnit(opts);
    expect(r.stats.rowsImported).toBe(0);
    expect(r.newCheckpoint).toEqual({ stream, seq: seqs[1] });
    expect(dead).toHaveLength(2);
    await nats.publish(`${stream}.x`, [{ id: 7, v: 'ok' }]);
    expect((await runUnit(opts)).stats.rowsImported).toBe(1);
    const { rows } = await pg.query(`SELECT id, v FROM "${pg.schema}".only`);
    expect(rows).toEqual([{ id: 7, v: 'ok' }]);
    await source.close();
  });

  it('a member outside the run schema ends the run before it; the next run takes it (nothing dropped)', async () => {
    const stream = await nats.stream();
    const { source } = setup(stream, { s: {} });
    await nats.publish(`${stream}.a`, [{ a: 1 }, { a: 2 }]);
    const ctx = testContext({ unitId: 's' });
    const first: Array<{ rows: number; seq?: number }> = [];
    // first pull fixes the schema to { a }; the next pull's message with `b` ends the read
    const reader = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units: { s: {} }, fetchBatch: 2 });
    await nats.publish(`${stream}.a`, [{ a: 3, b: 'x' }]);
    for await (const b of reader.read({ unitId: 's', mode: 'incremental', checkpoint: null }, ctx))
      first.push({ rows: b.rows.length, seq: b.checkpoint?.seq });
    expect(first).toEqual([{ rows: 2, seq: 2 }]);
    const next: string[][] = [];
    for await (const b of reader.read({ unitId: 's', mode: 'incremental', checkpoint: { stream, seq: 2 } }, ctx))
      next.push(b.schema!.fields.map((f) => f.name));
    expect(next[0]).toEqual(['subject', 'stream_seq', 'timestamp', 'headers', 'a', 'b']);
    await reader.close();
    await source.close();
  });

  it('replays a unit from a sequence or a time through its checkpoint; full mode replays from its start', async () => {
    const stream = await nats.stream();
    const { source } = setup(stream, { r: { payload: 'json' } });
    await nats.publish(`${stream}.a`, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await new Promise((r) => setTimeout(r, 50));
    const t = new Date();
    await new Promise((r) => setTimeout(r, 50));
    await nats.publish(`${stream}.a`, [{ n: 4.5 }, { n: 5 }]);
    const ctx = testContext({ unitId: 'r' });
    const read = async (checkpoint: JetStreamCheckpoint | null, mode: 'full' | 'incremental' = 'incremental') => {
      const out: string[] = [];
      for await (const b of source.read({ unitId: 'r', mode, checkpoint }, ctx))
        for (const row of b.rows) out.push((row.payload as { text: string }).text);
      return out;
    };
    expect(await read(await source.checkpointAt('r', { seq: 2 }))).toEqual([
      '{"n":2}',
      '{"n":3}',
      '{"n":4.5}',
      '{"n":5}',
    ]);
    expect(await read(await source.checkpointAt('r', { time: t }))).toEqual(['{"n":4.5}', '{"n":5}']);
    expect(await source.checkpointAt('r', { time: new Date(Date.now() + 60_000) })).toEqual({ stream, seq: 5 });
    expect(await read({ stream, seq: 5 }, 'full')).toHaveLength(5);
    expect(await source.pending('r', { stream, seq: 1 })).toBe(4);
    expect(await source.pending('r', null)).toBe(5);
    await source.close();
  });

  it('refuses a work-queue stream, a checkpoint of another stream and one ahead of the stream', async () => {
    const wq = await nats.stream('wq', { retention: 'workqueue' });
    const ctx = testContext({ unitId: 'u' });
    const drain = async (s: JetStreamSource, checkpoint: JetStreamCheckpoint | null) => {
      for await (const _ of s.read({ unitId: 'u', mode: 'incremental', checkpoint }, ctx)) {
      }
    };
    const a = new JetStreamSource({ servers: '127.0.0.1:4222', stream: wq, units: { u: {} } });
    await expect(drain(a, null)).rejects.toMatchObject({ code: 'config_invalid' });
    await a.close();
    const stream = await nats.stream();
    await nats.publish(`${stream}.a`, [{ n: 1 }]);
    const b = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units: { u: {} } });
    await expect(drain(b, { stream: 'other', seq: 1 })).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(drain(b, { stream, seq: 50 })).rejects.toMatchObject({ code: 'source_failed', retryable: false });
    const missing = new JetStreamSource({ servers: '127.0.0.1:4222', stream: 'no_such_stream_x', units: { u: {} } });
    await expect(drain(missing, null)).rejects.toMatchObject({ code: 'not_found' });
    await b.close();
    await missing.close();
  });

  it('validates its config at the boundary', () => {
    expect(() => new JetStreamSource({ stream: 's', units: { u: {} } })).toThrow(/servers/);
    expect(() => new JetStreamSource({ servers: 'x', stream: '', units: {} } as never)).toThrow(
      /stream.*\n?.*units|units/,
    );
  });
});
