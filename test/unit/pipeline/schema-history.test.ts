import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  type FieldSchema,
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  type Row,
  readSchemaHistory,
  runUnit,
  type SchemaContract,
} from '../../../src/index.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

const unit = { endpointId: 'mem', unitId: 'users' };
const f = (name: string, type: FieldSchema['type'], nullable = true): FieldSchema => ({ name, type, nullable });

/** One unit whose rows and schema the test changes between runs; full runs, append. */
function setup() {
  const kv = new MemoryKvStore();
  const staging = new MemoryStagingProvider();
  const sink = new MemorySink();
  const events: IngestionEvent[] = [];
  const state: { rows: Row[]; schema: { fields: FieldSchema[] } } = {
    rows: [{ id: 1, name: 'a' }],
    schema: { fields: [f('id', 'int32', false), f('name', 'string')] },
  };
  const run = (schemaContract?: SchemaContract, planSlices?: number) => {
    const source = new MemorySource({
      units: { users: { rows: state.rows, schema: state.schema, ...(planSlices ? { planSlices } : {}) } },
    });
    return runUnit({
      source,
      sink,
      staging,
      kv,
      unit,
      mode: 'full',
      onEvent: (e) => events.push(e),
      ...(schemaContract ? { schemaContract } : {}),
      policy: { retry: { maxAttempts: 1 } },
    });
  };
  const history = () => readSchemaHistory(kv, checkpointKey({ vendor: 'default', ...unit }));
  return { kv, staging, sink, events, state, run, history };
}

describe('schema history and contract', () => {
  it('records version 1, then a new version with a schema.changed event carrying the diff', async () => {
    const t = setup();
    await t.run();
    const h1 = await t.history();
    expect(h1?.current.version).toBe(1);
    expect(h1?.past).toEqual([]);
    expect(t.events.some((e) => e.type === 'schema.changed')).toBe(false);

    // the same schema again: no new version, no event
    await t.run();
    expect((await t.history())?.current.version).toBe(1);

    t.state.schema = { fields: [f('id', 'int64', false), f('name', 'string'), f('region', 'string')] };
    t.state.rows = [{ id: 2n, name: 'b', region: 'eu' }];
    await t.run();
    const changed = t.events.filter((e) => e.type === 'schema.changed');
    expect(changed).toHaveLength(1);
    const ev = changed[0] as Extract<IngestionEvent, { type: 'schema.changed' }>;
    expect(ev.fromVersion).toBe(1);
    expect(ev.toVersion).toBe(2);
    expect(ev.diff.added.map((x) => x.name)).toEqual(['region']);
    expect(ev.diff.widened).toEqual([{ name: 'id', kind: 'widened', from: 'int32', to: 'int64' }]);
    const h2 = await t.history();
    expect(h2?.current.version).toBe(2);
    expect(h2?.past.map((v) => v.version)).toEqual([1]);
    expect(h2?.lastChange?.summary).toContain('added region');
    expect(t.sink.rows('users').map((r) => r.region ?? null)).toEqual([null, null, 'eu']);
  });

  it('freeze fails with schema_conflict before anything is staged, naming column, types and remedies', async () => {
    const t = setup();
    await t.run('freeze');
    t.state.schema = { fields: [f('id', 'int32', false), f('name', 'string'), f('region', 'string')] };
    t.state.rows = [{ id: 2, name: 'b', region: 'eu' }];
    for (const planSlices of [undefined, 2]) {
      const err = await t.run('freeze', planSlices).catch((e) => e);
      expect(err.code).toBe('schema_conflict');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('"users"');
      expect(err.message).toContain('column "region" added (string)');
      expect(err.message).toContain("{ columns: 'evolve' }");
      expect(err.message).toContain('Nothing was staged');
    }
    expect(t.sink.rows('users')).toHaveLength(1);
    expect((await t.history())?.current.version).toBe(1);
    // nothing staged, no pending run left behind: the run with the contract relaxed starts fresh
    const out = await t.run({ columns: 'evolve' });
    expect(out.resumed).toBe(false);
    expect(t.sink.rows('users')).toHaveLength(2);
  });

  it('an incompatible type change fails under evolve; discard_value loads it as NULL and keeps the old type', async () => {
    const t = setup();
    await t.run();
    t.state.schema = { fields: [f('id', 'int32', false), f('name', 'int64')] };
    t.state.rows = [{ id: 2, name: 5n }];
    const err = await t.run().catch((e) => e);
    expect(err.code).toBe('schema_conflict');
    expect(err.message).toContain('column "name" changed type (string → int64)');
    expect(err.message).toContain("dataType: 'discard_value'");
    expect(err.message).toContain('ingest::default::endpoint::mem::unit::users::sink::::schema');
    await t.run({ dataType: 'discard_value' });
    expect(t.sink.rows('users')).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: null },
    ]);
    // the recorded schema is what was loaded: the old type, so the next run discards again
    expect((await t.history())?.current.version).toBe(1);
  });

  it('discard_row on columns leaves the new column out and drops rows holding a value in it', async () => {
    const t = setup();
    await t.run();
    t.state.schema = { fields: [f('id', 'int32', false), f('name', 'string'), f('extra', 'string')] };
    t.state.rows = [
      { id: 2, name: 'b', extra: null },
      { id: 3, name: 'c', extra: 'x' },
    ];
    const out = await t.run({ columns: 'discard_row' }, 2);
    expect(out.stats.rowsImported).toBe(1);
    expect(t.sink.rows('users')).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
    ]);
    const ev = t.events.find((e) => e.type === 'schema.changed') as Extract<IngestionEvent, { type: 'schema.changed' }>;
    expect(ev.discarded).toEqual({ omit: ['extra'], nullify: [], dropIfSet: ['extra'], dropIfNull: [] });
  });

  it('refuses a bad schemaContract with config_invalid', async () => {
    const t = setup();
    const err = await t.run('nope' as SchemaContract).catch((e) => e);
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain('schemaContract');
  });
});
