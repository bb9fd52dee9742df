import { describe, expect, it } from 'vitest';
import type { ImportRequest, ImportSlice } from '../../../src/contracts/sink-endpoint.js';
import type { RecordReader } from '../../../src/contracts/staging.js';
import type { Row } from '../../../src/contracts/values.js';
import { IngestError } from '../../../src/errors/ingest-error.js';
import { MySqlSink } from '../../../src/mysql/index.js';
import { PostgresSink } from '../../../src/postgres/index.js';
import type { SqlDialect } from '../../../src/sql/dialect.js';
import {
  type LedgerColumn,
  type LedgerSession,
  type LedgerSinkDialect,
  RowProblem,
} from '../../../src/sql/ledger-dialect.js';
import { LedgerSink } from '../../../src/sql/ledger-sink.js';
import { countLines, rowText } from '../../../src/sql/ledger-text.js';
import { testContext } from '../../../src/testing/index.js';

/** An in-memory database: committed tables and ledger; a session applies its transaction's writes on COMMIT. */
class FakeDb {
  tables = new Map<string, Row[]>();
  ledger = new Map<string, number>();
  sessions = 0;
  released: boolean[] = [];
}

type Op = (db: FakeDb) => void;

class FakeSession implements LedgerSession {
  ops: Op[] | undefined;
  constructor(readonly db: FakeDb) {
    db.sessions++;
  }
  async query(sql: string, params: readonly unknown[] = []): Promise<unknown> {
    if (sql === 'BEGIN') this.ops = [];
    else if (sql === 'COMMIT') {
      for (const op of this.ops!) op(this.db);
      this.ops = undefined;
    } else if (sql === 'ROLLBACK') this.ops = undefined;
    else if (sql.startsWith('UPDATE')) {
      const [rows, run, unit, slice] = params;
      this.ops!.push((db) => db.ledger.set(`${run}|${unit}|${slice}`, rows as number));
    } else if (sql.startsWith('CLEAR ')) this.ops!.push((db) => db.tables.set(sql.slice(6), []));
    return undefined;
  }
  release(healthy = true): void {
    this.db.released.push(healthy);
  }
}

const sqlDialect: SqlDialect = {
  id: 'postgres',
  title: 'Fake',
  quote: (n) => `"${n}"`,
  qualified: (t) => `"${t.schema}"."${t.name}"`,
  format: (t) => `${t.schema}.${t.name}`,
  parse: (ref, def) => {
    const [a, b] = ref.split('.');
    if (b !== undefined) return { schema: a, name: b };
    if (def === undefined) throw new IngestError('config_invalid', `no schema in ${ref}`);
    return { schema: def, name: a };
  },
  param: (i) => `$${i}`,
  isTransient: () => false,
  isRowError: () => false,
  isUniqueViolation: () => false,
  wrap: (err, code, message) => new IngestError(code, message, { cause: err }),
};

function fakeDialect(db: FakeDb, uniqueKeys?: string[][]): LedgerSinkDialect<FakeSession, LedgerColumn> {
  return {
    ...sqlDialect,
    sinkName: 'FakeSink',
    defaultSchema: 's',
    maxRunIdBytes: 16,
    begin: 'BEGIN',
    tableOptions: '',
    stage: { table: 'stage', create: () => '', merge: () => '' },
    open: async () => new FakeSession(db),
    poolSize: () => 4,
    ledgerDdl: () => 'LEDGER',
    createTable: async () => {},
    columnType: async () => 'text',
    describe: async () => ({ columns: [{ name: 'id' }, { name: 'v' }], primaryKey: ['id'], uniqueKeys }),
    clear: (t) => `CLEAR ${t}`,
    typeRules: 'postgres',
    columnTypeOf: () => 'text',
    alterType: (t) => `ALTER ${t}`,
    dropNotNull: (t) => `ALTER ${t}`,
    alterTable: async () => {},
    async claim(s, _ledger, c) {
      const keys = c.slices.map((i) => `${c.runId}|${c.unitId}|${i}`);
      if (keys.some((k) => db.ledger.has(k))) return false;
      s.ops!.push((d) => {
        for (const k of keys) d.ledger.set(k, 0);
      });
      return true;
    },
    loader: async (_s, _plan, _req, _ctx, progress) => ({
      async load(s, table, slice) {
        let n = 0;
        const rows: Row[] = [];
        for await (const batch of slice.reader.iterBatches(100)) {
          for (const row of batch) {
            n++;
            if (row.v === 'bad') throw new RowProblem('too long', 'v', n, { sqlstate: '22001' });
            rows.push(row);
          }
        }
        s.ops!.push((d) => d.tables.set(table, [...(d.tables.get(table) ?? []), ...rows]));
        progress.add(n, slice.index);
        return n;
      },
    }),
    rowProblem: () => undefined,
    reusableAfter: () => false,
  };
}

const reader = (rows: Row[]): RecordReader =>
  ({
    async *iterBatches() {
      yield rows;
    },
  }) as unknown as RecordReader;

function request(disposition: ImportRequest['disposition'], slices: Row[][], primaryKey?: string[]): ImportRequest {
  const s: ImportSlice[] = slices.map((rows, index) => ({ index, rows: rows.length, reader: reader(rows) }));
  return {
    unitId: 'u.t',
    reader: reader([]),
    slices: s,
    handles: [],
    disposition,
    primaryKey,
    schema: {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'v', type: 'string', nullable: true },
      ],
    },
  };
}

const ctx = (runId = 'run-1') => testContext({ unitId: 'u.t', runId });
const target = '"s"."t"';

describe('LedgerSink (the one algorithm behind PostgresSink and MySqlSink)', () => {
  it('append: every slice once; importing the same run again skips every slice through the ledger', async () => {
    const db = new FakeDb();
    const sink = new LedgerSink(fakeDialect(db), { importConcurrency: 3 });
    const req = request('append', [[{ id: 1 }, { id: 2 }], [{ id: 3 }], [{ id: 4 }]]);
    const first = await sink.import(req, ctx());
    expect(first.rowsImported).toBe(4);
    expect(first.provenance).toMatchObject({ target: 's.t', ledger: 's._nucleus_ingest_ledger', slicesCommitted: 3 });
    expect(
      db.tables
        .get(target)
        ?.map((r) => r.id)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    expect([...db.ledger.values()].sort()).toEqual([1, 1, 2]);
    const again = await sink.import(req, ctx());
    expect(again).toMatchObject({ rowsImported: 4, provenance: { slicesCommitted: 0, slicesSkipped: 3 } });
    expect(db.tables.get(target)).toHaveLength(4);
  });

  it('a row that does not fit is row_rejected naming the column, the row and the slice; that slice rolls back', async () => {
    const db = new FakeDb();
    const sink = new LedgerSink(fakeDialect(db), { importConcurrency: 1 });
    const req = request('append', [[{ id: 1 }], [{ id: 2 }, { id: 3, v: 'bad' }]]);
    const err = await sink.import(req, ctx()).catch((e) => e);
    expect(IngestError.is(err, 'row_rejected')).toBe(true);
    expect(err.message).toContain('Slice 1 of run run-1');
    expect(err.message).toContain('column "v" (row 2 of the slice)');
    expect(err.details).toMatchObject({ table: target, column: 'v', slice: 1, row: 2, sqlstate: '22001' });
    expect(db.tables.get(target)).toEqual([{ id: 1 }]);
    expect(db.ledger.size).toBe(1);
    expect(db.released.at(-1)).toBe(false);
  });

  it('replace: empties the target and loads every slice in one transaction; a second import skips it all', async () => {
    const db = new FakeDb();
    db.tables.set(target, [{ id: 99 }]);
    const sink = new LedgerSink(fakeDialect(db), {});
    const req = request('replace', [[{ id: 1 }], [{ id: 2 }, { id: 3 }]]);
    expect(await sink.import(req, ctx())).toMatchObject({ rowsImported: 3, provenance: { slicesCommitted: 2 } });
    expect(db.tables.get(target)?.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(db.ledger.get('run-1|u.t|1')).toBe(2);
    expect(await sink.import(req, ctx())).toMatchObject({ provenance: { slicesCommitted: 0, slicesSkipped: 2 } });
    expect(db.tables.get(target)).toHaveLength(3);
  });

  it('merge needs a key; where the catalog lists unique keys, the key must match one of them', async () => {
    const db = new FakeDb();
    const sink = new LedgerSink(fakeDialect(db, [['v']]), {});
    const bad = await sink.import(request('merge', [[{ id: 1 }]], ['id', 'v']), ctx()).catch((e) => e);
    expect(bad).toMatchObject({ code: 'config_invalid' });
    expect(bad.message).toContain('needs a primary key or unique index on exactly those columns');
    expect((await sink.import(request('merge', [[{ id: 1 }]], ['v']), ctx())).rowsImported).toBe(1);
  });

  it('refuses an unknown disposition, a run id over the ledger limit, and a closed sink', async () => {
    const sink = new LedgerSink(fakeDialect(new FakeDb()), {});
    await expect(sink.import(request('upsert' as never, []), ctx())).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(sink.import(request('append', []), ctx('r'.repeat(17)))).rejects.toThrow(/longer than 16 bytes/);
    await sink.close();
    await expect(sink.import(request('append', []), ctx())).rejects.toThrow('FakeSink already closed');
  });
});

describe('rowText / countLines', () => {
  it('encodes row by row into pieces of about the given size, numbering rows across batches', async () => {
    async function* batches() {
      yield [{ v: 'aaaa' }, { v: 'bbbb' }];
      yield [{ v: 'cccc' }];
    }
    const seen: number[] = [];
    const pieces: string[] = [];
    const on = { batch: () => {}, rows: (n: number) => seen.push(n) };
    for await (const b of rowText(batches(), 10, (r, n) => `${n}${r.v}\n`, on)) pieces.push(b.toString());
    expect(pieces).toEqual(['1aaaa\n', '2bbbb\n', '3cccc\n']);
    expect(seen).toEqual([2, 1]);
    expect(countLines(Buffer.from(pieces.join('')))).toBe(3);
  });
});

describe('one option name across the SQL sinks', () => {
  const pool = { getConnection() {}, end() {} };
  it('MySqlSink takes `schema` (MySQL database), `database` stays a deprecated alias; two different values are refused', () => {
    expect(new MySqlSink({ pool, schema: 'dwh' }).targetOf('x.t')).toEqual({ database: 'dwh', name: 't' });
    expect(new MySqlSink({ pool, database: 'dwh' }).targetOf('x.t')).toEqual({ database: 'dwh', name: 't' });
    expect(new MySqlSink({ pool, schema: 'dwh', database: 'dwh' }).targetOf('x.t')).toEqual({
      database: 'dwh',
      name: 't',
    });
    expect(() => new MySqlSink({ pool, schema: 'dwh', database: 'other' })).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/`schema`.*`database`/) }),
    );
    expect(
      new PostgresSink({ pool: { connect() {}, query() {}, end() {} } as never, schema: 'dwh' }).targetOf('x.t'),
    ).toEqual({
      schema: 'dwh',
      name: 't',
    });
  });
});
