import { type IngestionContext, MemoryStagingProvider, type RecordSchema, type Row } from '../../src/index.js';

/**
 * A sealed in-memory staging session of `rows` split into `slices` slices of about equal size (with `schema` on each
 * writer when given), and its description: the input of a sink's `import` in tests that drive a sink directly.
 */
export async function stageInMemory(ctx: IngestionContext, rows: Row[], slices: number, schema?: RecordSchema) {
  const session = await new MemoryStagingProvider().allocateSession(ctx);
  const per = Math.ceil(rows.length / slices);
  for (let i = 0; i < slices; i++) {
    const w = session.writer({ slice: i, ...(schema ? { schema } : {}) });
    await w.writeBatch(rows.slice(i * per, (i + 1) * per));
    await w.close();
  }
  await session.seal();
  return { session, desc: await session.describe() };
}
