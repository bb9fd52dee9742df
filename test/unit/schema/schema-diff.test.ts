import { describe, expect, it } from 'vitest';
import type { FieldSchema, RecordSchema } from '../../../src/index.js';
import {
  applyContract,
  diffSchemas,
  filterRows,
  hasChanges,
  resolveSchemaContract,
  sqlTypeChange,
} from '../../../src/index.js';

const f = (name: string, type: FieldSchema['type'], extra: Partial<FieldSchema> = {}): FieldSchema => ({
  name,
  type,
  nullable: true,
  ...extra,
});
const pg = (type: string) => ({ native: { dialect: 'postgres' as const, type } });
const my = (type: string) => ({ native: { dialect: 'mysql' as const, type } });
const s = (...fields: FieldSchema[]): RecordSchema => ({ fields });

describe('sqlTypeChange', () => {
  it.each([
    ['character varying(10)', 'text', 'widened'],
    ['character varying(10)', 'character varying(20)', 'widened'],
    ['character varying(20)', 'character varying(10)', 'narrowed'],
    ['text', 'character varying(10)', 'narrowed'],
    ['smallint', 'integer', 'widened'],
    ['integer', 'bigint', 'widened'],
    ['bigint', 'integer', 'narrowed'],
    ['numeric(10,2)', 'numeric(12,2)', 'widened'],
    ['numeric(10,2)', 'numeric(12,4)', 'widened'],
    ['numeric(10,2)', 'numeric(10,4)', 'typeChanged'],
    ['numeric(10,2)', 'numeric', 'widened'],
    ['integer', 'numeric(10,0)', 'widened'],
    ['bigint', 'numeric(18,0)', 'typeChanged'],
    ['real', 'double precision', 'widened'],
    ['integer', 'double precision', 'widened'],
    ['bigint', 'double precision', 'typeChanged'],
    ['timestamp(3) without time zone', 'timestamp(6) without time zone', 'widened'],
    ['timestamp without time zone', 'timestamp with time zone', 'typeChanged'],
    ['integer', 'text', 'typeChanged'],
    ['text', 'integer', 'typeChanged'],
    ['integer', 'integer', 'same'],
  ])('PostgreSQL %s → %s: %s', (a, b, want) => {
    expect(sqlTypeChange(a, b)).toBe(want);
  });

  it.each([
    ['varchar(10)', 'varchar(40)', 'widened'],
    ['varchar(10)', 'text', 'widened'],
    ['varchar(100000)', 'text', 'narrowed'],
    ['text', 'mediumtext', 'widened'],
    ['tinyint', 'smallint', 'widened'],
    ['int', 'bigint', 'widened'],
    ['int unsigned', 'int', 'narrowed'],
    ['int unsigned', 'bigint', 'widened'],
    ['int(11)', 'int', 'same'],
    ['float', 'double', 'widened'],
    ['decimal(10,2)', 'decimal(12,2)', 'widened'],
    ['datetime', 'datetime(6)', 'widened'],
    ['datetime(6)', 'datetime(3)', 'narrowed'],
    ['varbinary(4)', 'varbinary(8)', 'widened'],
    ['varbinary(8)', 'longblob', 'widened'],
  ])('MySQL %s → %s: %s', (a, b, want) => {
    expect(sqlTypeChange(a, b, { mysql: true })).toBe(want);
  });
});

describe('diffSchemas', () => {
  it('ignores declared array dimensions (not enforced by PostgreSQL) but not the element type', () => {
    const one = f('a', 'json', { logical: { element: 'int32' }, ...pg('integer[]') });
    const two = f('a', 'json', { logical: { element: 'int32', dimensions: 2 }, ...pg('integer[]') });
    expect(hasChanges(diffSchemas(s(one), s(two)))).toBe(false);
    expect(hasChanges(diffSchemas(s(two), s(one)))).toBe(false);
    const text = f('a', 'json', { logical: { element: 'string' }, ...pg('text[]') });
    expect(diffSchemas(s(one), s(text)).typeChanged.map((c) => c.name)).toEqual(['a']);
  });
  it('finds added, dropped, widened, narrowed, changed and nullability', () => {
    const before = s(
      f('id', 'int32', { nullable: false, ...pg('integer') }),
      f('name', 'string', { logical: { length: 10 }, ...pg('character varying(10)') }),
      f('code', 'string', { logical: { length: 20 }, ...pg('character varying(20)') }),
      f('n', 'int32', pg('integer')),
      f('gone', 'string'),
      f('req', 'string', { nullable: false }),
    );
    const after = s(
      f('id', 'int64', { nullable: false, ...pg('bigint') }),
      f('name', 'string', pg('text')),
      f('code', 'string', { logical: { length: 5 }, ...pg('character varying(5)') }),
      f('n', 'string', pg('text')),
      f('req', 'string'),
      f('region', 'string'),
    );
    const d = diffSchemas(before, after);
    expect(d.added.map((x) => x.name)).toEqual(['region']);
    expect(d.dropped).toEqual(['gone']);
    expect(d.widened).toEqual([
      { name: 'id', kind: 'widened', from: 'integer', to: 'bigint' },
      { name: 'name', kind: 'widened', from: 'character varying(10)', to: 'text' },
    ]);
    expect(d.narrowed.map((x) => x.name)).toEqual(['code']);
    expect(d.typeChanged).toEqual([{ name: 'n', kind: 'typeChanged', from: 'integer', to: 'text' }]);
    expect(d.nullabilityChanged).toEqual([{ name: 'req', nullable: true }]);
    expect(d.reordered).toBe(false);
    expect(hasChanges(d)).toBe(true);
  });

  it('sees a reorder, and no change in the same schema', () => {
    const a = s(f('a', 'string'), f('b', 'int32'));
    expect(hasChanges(diffSchemas(a, a))).toBe(false);
    const d = diffSchemas(a, s(f('b', 'int32'), f('a', 'string')));
    expect(d.reordered).toBe(true);
    expect(d.added).toEqual([]);
  });

  it('compares logical types without native ones', () => {
    const d = diffSchemas(
      s(f('a', 'int32'), f('b', 'decimal', { logical: { precision: 10, scale: 2 } }), f('c', 'timestamp')),
      s(
        f('a', 'decimal', { logical: { precision: 20, scale: 0 } }),
        f('b', 'decimal', { logical: { precision: 8, scale: 2 } }),
        f('c', 'timestamp', { logical: { withTimeZone: true } }),
      ),
    );
    expect(d.widened.map((x) => x.name)).toEqual(['a']);
    expect(d.narrowed.map((x) => x.name)).toEqual(['b']);
    expect(d.typeChanged.map((x) => x.name)).toEqual(['c']);
  });

  it('treats MySQL native types by their own rules', () => {
    const d = diffSchemas(s(f('a', 'int32', my('int(11)'))), s(f('a', 'int64', my('bigint(20)'))));
    expect(d.widened.map((x) => x.name)).toEqual(['a']);
  });
});

describe('applyContract', () => {
  const before = s(
    f('id', 'int32', { nullable: false }),
    f('n', 'int32'),
    f('old', 'string'),
    f('req', 'string', { nullable: false }),
  );
  const after = s(f('id', 'int64', { nullable: false }), f('n', 'string'), f('req', 'string'), f('added', 'string'));
  const d = diffSchemas(before, after);

  it('evolve takes added, dropped and widened columns but refuses an incompatible type change', () => {
    const out = applyContract(before, d, after, resolveSchemaContract('evolve'));
    expect(out.violations).toEqual([
      { column: 'n', change: 'typeChanged', reason: 'incompatible', from: 'int32', to: 'string' },
    ]);
    expect(out.schema).toEqual(after);
  });

  it('evolve takes an incompatible type change when the disposition rebuilds the target (replace)', () => {
    const out = applyContract(before, d, after, resolveSchemaContract('evolve'), { rebuild: true });
    expect(out.violations).toEqual([]);
  });

  it('freeze refuses every change, naming old and new types', () => {
    const out = applyContract(before, d, after, resolveSchemaContract('freeze'));
    expect(out.violations.map((v) => `${v.column}:${v.change}`).sort()).toEqual(
      ['added:added', 'id:widened', 'n:typeChanged', 'old:dropped', 'req:nullabilityChanged'].sort(),
    );
  });

  it('discard_value leaves new columns out and retyped values NULL', () => {
    const out = applyContract(before, d, after, resolveSchemaContract('discard_value'));
    expect(out.violations).toEqual([]);
    expect(out.schema.fields.map((x) => `${x.name}:${x.type}:${x.nullable}`)).toEqual([
      'id:int32:false',
      'n:int32:true',
      'req:string:false',
    ]);
    expect(out.filter).toEqual({ omit: ['added'], nullify: ['n'], dropIfSet: ['id'], dropIfNull: ['req'] });
    const rows = filterRows(
      [
        { id: 1n, n: 'x', req: 'r', added: 'a' },
        { id: null, n: 'y', req: null, added: null },
        { id: null, n: 'z', req: 'r', added: 'b' },
      ],
      out.filter,
    );
    expect(rows).toEqual([{ id: null, n: null, req: 'r' }]);
  });

  it('discard_row drops rows holding a value in a new column; per-entity modes combine', () => {
    const c = resolveSchemaContract({ columns: 'discard_row', dataType: 'evolve' });
    const b = s(f('id', 'int32'));
    const a = s(f('id', 'int32'), f('extra', 'string'));
    const out = applyContract(b, diffSchemas(b, a), a, c);
    expect(out.schema).toEqual(b);
    expect(
      filterRows(
        [
          { id: 1, extra: null },
          { id: 2, extra: 'x' },
        ],
        out.filter,
      ),
    ).toEqual([{ id: 1 }]);
  });
});
