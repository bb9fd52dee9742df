import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkpointKey, MemoryKvStore, MemoryStagingProvider, runUnit } from '../../../src/index.js';
import { keySegment, leaseKey, parseStateKey, receiptKey, runStateKey } from '../../../src/pipeline/keys.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

// Ids built mostly from the characters that matter: the separator, the escape and what it escapes to.
const id = fc.string({
  unit: fc.constantFrom(':', ':', '%', '3', 'A', '2', '5', 'a', 's', 'r', 'u', 'n'),
  maxLength: 8,
});
const unit = fc.record({ vendor: id, endpointId: id, unitId: id, sinkId: id, runId: id });
const kind = fc.constantFrom('checkpoint', 'run', 'lease', 'receipt');

type Unit = { vendor: string; endpointId: string; unitId: string; sinkId: string; runId: string };

function keyOf(u: Unit, k: string): string {
  const cp = checkpointKey(u);
  if (k === 'checkpoint') return cp.key;
  if (k === 'run') return runStateKey(cp).key;
  if (k === 'lease') return leaseKey(cp).key;
  return receiptKey(runStateKey(cp), u.runId).key;
}

/** What a key names: the run id only matters for a receipt. */
const identity = (u: Unit, k: string) =>
  JSON.stringify([k, u.vendor, u.endpointId, u.unitId, u.sinkId, k === 'receipt' ? u.runId : null]);

describe('state keys (ADR 0017)', () => {
  it('every key reads back to exactly the parts it was made of (so no two distinct parts give one key)', () => {
    fc.assert(
      fc.property(unit, kind, (u, k) => {
        const parsed = parseStateKey(keyOf(u, k));
        expect(parsed).toEqual({
          kind: k,
          vendor: u.vendor,
          endpointId: u.endpointId,
          unitId: u.unitId,
          sinkId: u.sinkId,
          ...(k === 'receipt' ? { runId: u.runId } : {}),
        });
      }),
      { numRuns: 20_000 },
    );
  });

  it('no two distinct (vendor, endpoint, unit, sink, run id, kind) give one key', () => {
    fc.assert(
      fc.property(
        // the second unit: another at random, or one whose id borrows the labels of the first's keys
        unit.chain((a) =>
          fc.tuple(
            fc.constant(a),
            kind,
            fc.oneof(
              unit,
              fc
                .constantFrom('::run', '::lease', `::run::${a.runId}`, `::sink::${a.sinkId}`)
                .map((tail) => ({ ...a, sinkId: `${a.sinkId}${tail}` })),
              fc
                .constantFrom(`::sink::${a.sinkId}`, `::sink::${a.sinkId}::run`)
                .map((tail) => ({ ...a, unitId: `${a.unitId}${tail}`, sinkId: '' })),
            ),
            kind,
          ),
        ),
        ([a, ka, b, kb]) => {
          if (keyOf(a, ka) === keyOf(b, kb)) expect(identity(b, kb)).toBe(identity(a, ka));
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('keySegment is injective and never leaves a separator inside a segment', () => {
    fc.assert(
      fc.property(id, id, (x, y) => {
        const sx = keySegment(x);
        expect(sx.includes('::') || sx.startsWith(':') || sx.endsWith(':')).toBe(false);
        if (x !== y) expect(sx).not.toBe(keySegment(y));
      }),
      { numRuns: 20_000 },
    );
  });

  it('sinkId `s::lease` does not name the lease of sink `s`, nor `s::run` its run state', () => {
    const base = { vendor: 'v', endpointId: 'e', unitId: 'u' };
    const s = checkpointKey({ ...base, sinkId: 's' });
    expect(checkpointKey({ ...base, sinkId: 's::lease' }).key).not.toBe(leaseKey(s).key);
    expect(checkpointKey({ ...base, sinkId: 's::run' }).key).not.toBe(runStateKey(s).key);
    expect(checkpointKey({ ...base, sinkId: 's::run::r1' }).key).not.toBe(receiptKey(runStateKey(s), 'r1').key);
    expect(checkpointKey({ ...base, sinkId: 's::lease' }).key).toBe(
      'ingest::v::endpoint::e::unit::u::sink::%s%3A%3Alease',
    );
  });

  it('keys of ids that could not collide are the keys earlier versions wrote (their state is still found)', () => {
    const parts = { vendor: 'postgres', endpointId: 'pg-main', unitId: 'public.orders', sinkId: 'lake:raw' };
    expect(checkpointKey(parts).key).toBe('ingest::postgres::endpoint::pg-main::unit::public.orders::sink::lake:raw');
    expect(checkpointKey({ ...parts, sinkId: undefined }).key).toBe(
      'ingest::postgres::endpoint::pg-main::unit::public.orders::sink::',
    );
    expect(checkpointKey({ ...parts, unitId: 'items%20x', sinkId: 'a:b:c' }).key).toBe(
      'ingest::postgres::endpoint::pg-main::unit::items%20x::sink::a:b:c',
    );
    const run = runStateKey(checkpointKey(parts));
    expect(receiptKey(run, '01J9Z-run:1').key).toBe(`${run.key}::01J9Z-run:1`);
  });

  it('a checkpoint stored under an earlier version is found by the next run', async () => {
    const kv = new MemoryKvStore();
    const rows = Array.from({ length: 10 }, (_, i) => ({ id: i + 1 }));
    // what an earlier version wrote for this unit: the literal key
    await kv.put(
      { namespace: 'ingestion', scopeId: 'default', key: 'ingest::memory::endpoint::mem::unit::items::sink::lake' },
      { cursor: 7 },
    );
    const sink = new MemorySink();
    const res = await runUnit({
      source: new MemorySource({ units: { items: { rows, cursorField: 'id' } } }),
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { vendor: 'memory', endpointId: 'mem', unitId: 'items', sinkId: 'lake' },
    });
    expect(sink.rows('items').map((r) => r.id)).toEqual([8, 9, 10]);
    expect(res.newCheckpoint).toEqual({ cursor: 10 });
  });
});
