import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { HttpJsonSource } from '../../src/http/index.js';
import {
  checkpointKey,
  MemoryKvStore,
  type ObjectStore,
  type ObjectStorePointer,
  ObjectStoreSink,
  ObjectStoreStagingProvider,
  runUnit,
} from '../../src/index.js';
import { json, startServer, type TestServer } from './http-fixtures.js';

interface Order {
  id: number;
  customer: string;
  total: number;
  paid: boolean;
  lines: Array<{ sku: string; qty: number }>;
  updated_at: string;
}

const at = (minute: number) => new Date(Date.UTC(2024, 5, 1, 12, minute)).toISOString();

let server: TestServer;
let dir: string;
beforeAll(async () => {
  server = await startServer();
  dir = await mkdtemp(join(tmpdir(), 'http-parquet-e2e-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function readBytes(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Every row of the given runs' Parquet files, read with hyparquet (an independent reader). */
async function parquetRows(store: ObjectStore, runs: ObjectStorePointer['runs']): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const run of runs) {
    for await (const o of store.list(`${run.dir}/`)) {
      if (!o.key.endsWith('.parquet')) continue;
      const buf = await readBytes(store, o.key);
      rows.push(
        ...(await parquetReadObjects({
          file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer,
        })),
      );
    }
  }
  return rows;
}

describe('HTTP API → filesystem staging → Parquet files', () => {
  it('lands every served record in Parquet through a 429, then a second run fetches only what changed', async () => {
    const db: Order[] = Array.from({ length: 9 }, (_, i) => ({
      id: i + 1,
      customer: `customer-${i + 1}`,
      total: (i + 1) * 10.5,
      paid: i % 2 === 0,
      lines: [{ sku: `sku-${i}`, qty: i + 1 }],
      updated_at: at(i),
    }));
    let rateLimitNext = true;
    const served: Order[] = [];
    server.handle((req, res) => {
      if (req.headers.authorization !== 'Bearer e2e-token-1234') return json(res, { error: 'unauthorized' }, 401);
      const since = req.query.updated_since;
      // An inclusive `updated_since`, ordered by updated_at, 3 per page, cursor = offset.
      const matching = db
        .filter((o) => !since || o.updated_at >= since)
        .sort((a, b) => a.updated_at.localeCompare(b.updated_at));
      const start = Number(req.query.cursor ?? 0);
      if (start === 3 && rateLimitNext) {
        rateLimitNext = false;
        return json(res, { error: 'rate limited' }, 429, { 'retry-after': '1' });
      }
      const page = matching.slice(start, start + 3);
      served.push(...page);
      json(res, { data: { items: page }, meta: { next: start + 3 < matching.length ? String(start + 3) : null } });
    });

    process.env.E2E_API_TOKEN = 'e2e-token-1234';
    const source = new HttpJsonSource({
      baseUrl: `${server.url}/api`,
      auth: { type: 'bearer', tokenEnv: 'E2E_API_TOKEN' },
      retry: { baseDelayMs: 10, maxDelayMs: 100 },
      units: {
        orders: {
          path: '/orders',
          recordsPath: 'data.items',
          pagination: { style: 'cursor', cursorPath: 'meta.next', cursorParam: 'cursor' },
          incremental: { param: 'updated_since', field: 'updated_at' },
          primaryKey: ['id'],
        },
      },
    });
    const staging = new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root: join(dir, 'staging') }),
    });
    const lake = new FileSystemObjectStore({ root: join(dir, 'lake') });
    const sink = new ObjectStoreSink({ store: lake, format: 'parquet', prefix: 'raw' });
    const kv = new MemoryKvStore();
    const unit = { vendor: 'http', endpointId: 'shop-api', unitId: 'orders' };

    // Run 1: 3 pages, a 429 before the second.
    const first = await runUnit({ source, sink, staging, kv, unit, policy: { sliceMaxRows: 4 } });
    expect(rateLimitNext).toBe(false);
    expect(first.stats.rowsImported).toBe(9);
    expect(first.newCheckpoint).toEqual({ since: at(8) });
    expect((await kv.get(checkpointKey(unit)))?.value).toEqual({ since: at(8) });

    const pointer1: ObjectStorePointer = JSON.parse((await readBytes(lake, sink.pointerKey('orders'))).toString());
    expect(pointer1.runs.map((r) => r.runId)).toEqual([first.runId]);
    expect(await parquetRows(lake, pointer1.runs)).toEqual(db);
    expect(served).toEqual(db);

    // Between runs: two orders change, one is new. Run 2 asks for updated_since = the checkpoint.
    db[1] = { ...db[1]!, paid: true, total: 99.25, updated_at: at(20) };
    db[6] = { ...db[6]!, customer: 'renamed', updated_at: at(21) };
    db.push({ id: 10, customer: 'customer-10', total: 1, paid: false, lines: [], updated_at: at(22) });
    served.length = 0;
    const requestsBefore = server.requests.length;

    const second = await runUnit({ source, sink, staging, kv, unit, policy: { sliceMaxRows: 4 } });
    const run2Requests = server.requests.slice(requestsBefore);
    expect(run2Requests.map((r) => r.query.updated_since)).toEqual([at(8), at(8)]);
    // The inclusive API re-sent the boundary record (id 9); the source dropped it client-side.
    expect(served.map((o) => o.id)).toEqual([9, 2, 7, 10]);
    expect(second.stats.rowsImported).toBe(3);
    expect(second.newCheckpoint).toEqual({ since: at(22) });

    const pointer2: ObjectStorePointer = JSON.parse((await readBytes(lake, sink.pointerKey('orders'))).toString());
    expect(pointer2.runs.map((r) => r.runId)).toEqual([first.runId, second.runId]);
    expect(await parquetRows(lake, [pointer2.runs[1]!])).toEqual([db[1], db[6], db[9]]);
  });
});
