import { parquetReadObjects } from 'hyparquet';
import { MemoryObjectStore, type ObjectStorePointer, ObjectStoreSink, type Row } from '../../src/index.js';
import { describeSinkEndpoint } from '../../src/testing/vitest/index.js';

const store = new MemoryObjectStore();
const sink = new ObjectStoreSink({ store, format: 'parquet', prefix: 'contract' });

async function bytes(key: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** What a reader following the `_CURRENT` pointer sees. */
async function readBack(unitId: string): Promise<Row[]> {
  if (!(await store.head(sink.pointerKey(unitId)))) return [];
  const pointer: ObjectStorePointer = JSON.parse((await bytes(sink.pointerKey(unitId))).toString());
  const rows: Row[] = [];
  for (const run of pointer.runs) {
    for await (const o of store.list(`${run.dir}/`)) {
      if (!o.key.endsWith('.parquet')) continue;
      const b = await bytes(o.key);
      rows.push(
        ...((await parquetReadObjects({
          file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer,
        })) as Row[]),
      );
    }
  }
  return rows;
}

describeSinkEndpoint('ObjectStoreSink (parquet)', () => sink, {
  unitId: 'people',
  readBack,
  dispositions: ['append', 'replace'],
});
