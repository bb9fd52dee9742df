import { describe, expect, it } from 'vitest';
import { IngestError } from '../../../src/index.js';
import { slotName } from '../../../src/postgres/cdc/cdc-source.js';
import { decodePgOutput, formatLsn, parseLsn, UNCHANGED } from '../../../src/postgres/cdc/pgoutput.js';
import { PostgresCdcSource } from '../../../src/postgres/index.js';
import { changeImport } from '../../../src/sql/change-apply.js';
import { CHANGE_FIELD_SCHEMAS, changeSchema, isChangeSchema } from '../../../src/sql/change-rows.js';

/** Bytes of a pgoutput message, built the way the server writes them. */
function msg(parts: Array<['u8' | 'i16' | 'i32' | 'u64', number | bigint] | ['str', string] | ['raw', string]>) {
  const bufs = parts.map(([kind, v]) => {
    switch (kind) {
      case 'u8':
        return Buffer.from([Number(v)]);
      case 'i16': {
        const b = Buffer.alloc(2);
        b.writeInt16BE(Number(v));
        return b;
      }
      case 'i32': {
        const b = Buffer.alloc(4);
        b.writeInt32BE(Number(v));
        return b;
      }
      case 'u64': {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(v));
        return b;
      }
      case 'str':
        return Buffer.concat([Buffer.from(String(v), 'utf8'), Buffer.from([0])]);
      default:
        return Buffer.from(String(v), 'utf8');
    }
  });
  return Buffer.concat(bufs);
}
const c = (s: string) => s.charCodeAt(0);
const text = (s: string): Array<['u8', number] | ['i32', number] | ['raw', string]> => [
  ['u8', c('t')],
  ['i32', Buffer.byteLength(s)],
  ['raw', s],
];

describe('pgoutput decoding', () => {
  it('keeps an unchanged TOASTed value as its own marker, NULL as null, text as PostgreSQL wrote it', () => {
    const m = decodePgOutput(
      msg([
        ['u8', c('U')],
        ['i32', 16384],
        ['u8', c('K')],
        ['i16', 3],
        ...text('7'),
        ['u8', c('n')],
        ['u8', c('n')],
        ['u8', c('N')],
        ['i16', 3],
        ...text('8'),
        ['u8', c('u')],
        ['u8', c('n')],
      ]),
    );
    expect(m).toEqual({
      tag: 'update',
      relid: 16384,
      old: ['7', null, null],
      oldKind: 'key',
      row: ['8', UNCHANGED, null],
    });
  });

  it('reads relations (key flags, types), begin/commit positions, deletes and truncates', () => {
    expect(
      decodePgOutput(
        msg([
          ['u8', c('R')],
          ['i32', 5],
          ['str', 'app'],
          ['str', 'items'],
          ['u8', c('d')],
          ['i16', 2],
          ['u8', 1],
          ['str', 'id'],
          ['i32', 20],
          ['i32', -1],
          ['u8', 0],
          ['str', 'naïve'],
          ['i32', 25],
          ['i32', -1],
        ]),
      ),
    ).toEqual({
      tag: 'relation',
      relid: 5,
      schema: 'app',
      name: 'items',
      replicaIdentity: 'd',
      columns: [
        { key: true, name: 'id', typeOid: 20, typmod: -1 },
        { key: false, name: 'naïve', typeOid: 25, typmod: -1 },
      ],
    });
    const commit = decodePgOutput(
      msg([
        ['u8', c('C')],
        ['u8', 0],
        ['u64', 0x16b374d848n],
        ['u64', 0x16b374d900n],
        ['u64', 1n],
      ]),
    );
    expect(commit).toMatchObject({ tag: 'commit', commitLsn: 0x16b374d848n, endLsn: 0x16b374d900n });
    expect(decodePgOutput(msg([['u8', c('D')], ['i32', 5], ['u8', c('K')], ['i16', 1], ...text('1')]))).toEqual({
      tag: 'delete',
      relid: 5,
      oldKind: 'key',
      old: ['1'],
    });
    expect(
      decodePgOutput(
        msg([
          ['u8', c('T')],
          ['i32', 2],
          ['u8', 3],
          ['i32', 5],
          ['i32', 6],
        ]),
      ),
    ).toEqual({
      tag: 'truncate',
      relids: [5, 6],
      cascade: true,
      restartIdentity: true,
    });
    expect(() =>
      decodePgOutput(
        msg([
          ['u8', c('I')],
          ['i32', 5],
          ['u8', c('N')],
          ['i16', 1],
          ['u8', c('t')],
          ['i32', 9],
        ]),
      ),
    ).toThrow(/truncated/);
  });

  it('formats and parses LSNs as PostgreSQL does', () => {
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16-B374D848')).toBeUndefined();
  });
});

describe('CDC names and change schemas', () => {
  it('slot names fit PostgreSQL (≤ 63 bytes, lower case) and differ per unit', () => {
    const a = slotName('nucleus', 'public.Orders', { schema: 'public', name: 'Orders' });
    const b = slotName('nucleus', 'sales.Orders', { schema: 'sales', name: 'Orders' });
    expect(a).toMatch(/^nucleus_orders_[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    const long = slotName('n'.repeat(40), `public.${'x'.repeat(60)}`, { schema: 'public', name: 'x'.repeat(60) });
    expect(long.length).toBeLessThanOrEqual(63);
  });

  it('change rows are applied with merge/replace and kept as a nullable, keyless log with append', () => {
    const schema = changeSchema({ fields: [{ name: 'id', type: 'int64', nullable: false }], primaryKey: ['id'] });
    expect(isChangeSchema(schema)).toBe(true);
    expect(isChangeSchema({ fields: [{ name: '_op', type: 'string', nullable: false }] })).toBe(false);
    expect(changeImport(schema, 'merge')).toEqual({
      apply: true,
      fields: { fields: [{ name: 'id', type: 'int64', nullable: false }], primaryKey: ['id'] },
    });
    const log = changeImport(schema, 'append')!;
    expect(log.apply).toBe(false);
    expect(log.fields.primaryKey).toBeUndefined();
    expect(log.fields.fields.map((f) => f.name)).toEqual(['id', ...CHANGE_FIELD_SCHEMAS.map((f) => f.name)]);
    expect(log.fields.fields.every((f) => f.nullable)).toBe(true);
  });

  it('options are checked once, naming each bad field', () => {
    let err: unknown;
    try {
      new PostgresCdcSource({ connectionString: 'nope', publication: '', slot: 'Bad-Name', units: ['noschema'] });
    } catch (e) {
      err = e;
    }
    expect(IngestError.is(err)).toBe(true);
    const e = err as IngestError;
    expect(e.code).toBe('config_invalid');
    for (const field of ['connectionString', 'publication', 'slot', 'units']) expect(e.message).toContain(field);
  });
});
