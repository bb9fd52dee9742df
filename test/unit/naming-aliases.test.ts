/** The naming rule of ADR 0012: the new names work, and the 0.1 names still do (deprecated aliases). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpJsonSource } from '../../src/http/index.js';
import { IngestError, type Json, type SourceEndpoint } from '../../src/index.js';
import * as mysql from '../../src/mysql/index.js';
import { MemorySource, testContext } from '../../src/testing/index.js';

async function readAll(source: SourceEndpoint, unitId: string, checkpoint: Json | null) {
  const ids: unknown[] = [];
  let last: Json | null | undefined = checkpoint;
  for await (const b of source.read({ unitId, mode: 'incremental', checkpoint }, testContext({ unitId }))) {
    ids.push(...b.rows.map((r) => r.id));
    if (b.checkpoint !== undefined) last = b.checkpoint;
  }
  return { ids, checkpoint: last };
}

describe('cursorColumns, the one cursor name', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('MemorySource: cursorColumns reads and checkpoints like the deprecated cursorField', async () => {
    const rows = [{ id: 3 }, { id: 1 }, { id: 2 }];
    const now = new MemorySource({ units: { u: { rows, cursorColumns: ['id'] } } });
    const old = new MemorySource({ units: { u: { rows, cursorField: 'id' } } });
    expect(await readAll(now, 'u', { cursor: 1 })).toEqual({ ids: [2, 3], checkpoint: { cursor: 3 } });
    expect(await readAll(old, 'u', { cursor: 1 })).toEqual(await readAll(now, 'u', { cursor: 1 }));
    expect((await now.collectMetadata())[0]).toMatchObject({ cursorColumns: ['id'] });
  });

  it('MemorySource refuses two cursor columns, or both names', () => {
    expect(() => new MemorySource({ units: { u: { rows: [], cursorColumns: ['a', 'b'] } } })).toThrow(IngestError);
    expect(() => new MemorySource({ units: { u: { rows: [], cursorColumns: ['a'], cursorField: 'a' } } })).toThrow(
      /not both/,
    );
  });

  it('HttpJsonSource: incremental.cursorColumns reads and checkpoints like the deprecated incremental.field', async () => {
    vi.stubGlobal('fetch', async () =>
      Response.json([
        { id: 1, updated_at: '2024-01-01' },
        { id: 2, updated_at: '2024-01-03' },
      ]),
    );
    const config = (incremental: object) =>
      new HttpJsonSource({
        baseUrl: 'http://api.test',
        units: { u: { path: '/x', recordsPath: '', pagination: { style: 'none' }, incremental } },
      } as never);
    const now = config({ param: 'since', cursorColumns: ['updated_at'] });
    const old = config({ param: 'since', field: 'updated_at' });
    const expected = { ids: [1, 2], checkpoint: { since: '2024-01-03' } };
    expect(await readAll(now, 'u', null)).toEqual(expected);
    expect(await readAll(old, 'u', null)).toEqual(expected);
    expect((await now.collectMetadata(testContext()))[0]).toMatchObject({ cursorColumns: ['updated_at'] });
    expect(() => config({ param: 'since' })).toThrow(/cursorColumns/);
  });
});

describe('one identifier vocabulary across SQL subpaths', () => {
  it('/mysql has the unprefixed names; the MySQL-prefixed ones are the same functions', () => {
    expect(mysql.quoteIdentifier('we`ird')).toBe('`we``ird`');
    expect(mysql.parseTableName('shop.orders')).toEqual({ database: 'shop', name: 'orders' });
    expect(mysql.quoteMySqlIdentifier).toBe(mysql.quoteIdentifier);
    expect(mysql.mySqlQualifiedName).toBe(mysql.qualifiedName);
    expect(mysql.parseMySqlTableName).toBe(mysql.parseTableName);
    expect(mysql.formatMySqlTableName).toBe(mysql.formatTableName);
    expect(mysql.MAX_MYSQL_IDENTIFIER_CHARS).toBe(mysql.MAX_IDENTIFIER_CHARS);
    expect(() => mysql.assertIdentifier('orders ')).toThrow(IngestError);
  });
});
