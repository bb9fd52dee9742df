import { z } from 'zod';
import type { KvKey, KvPutOptions } from '../contracts/kv-store.js';
import { IngestError } from '../errors/ingest-error.js';

/**
 * Shared argument checks and errors of every KvStore implementation.
 * @internal
 */
export function assertKvKey(key: KvKey): void {
  const problems: string[] = [];
  for (const f of ['namespace', 'scopeId', 'key'] as const) {
    const v = (key as unknown as Record<string, unknown> | undefined)?.[f];
    if (typeof v !== 'string' || v.length === 0) problems.push(`Expected \`${f}\` to be a non-empty string`);
  }
  if (problems.length)
    throw new IngestError('config_invalid', `Invalid KV key: ${problems.join('; ')}`, { details: { problems } });
}

const putOptions = z
  .object({
    expectedVersion: z.union([z.number().int().nonnegative(), z.null()]).optional(),
    ttlMs: z.number().int().positive().optional(),
  })
  .strict();

/** Validate put options. @internal */
export function kvPutOptions(opts: KvPutOptions | undefined): KvPutOptions {
  if (!opts) return {};
  const res = putOptions.safeParse(opts);
  if (!res.success) {
    throw new IngestError(
      'config_invalid',
      `Invalid KV put options: ${res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return res.data;
}

/** The `kv_conflict` error of a lost compare-and-set. @internal */
export function kvConflict(key: KvKey, expected: number | null | undefined, actual: number | undefined): IngestError {
  const want = expected === null ? 'absent' : `version ${expected}`;
  const got = actual === undefined ? 'absent' : `version ${actual}`;
  return new IngestError(
    'kv_conflict',
    `KV compare-and-set failed for ${key.namespace}/${key.scopeId}/${key.key}: expected ${want}, found ${got}`,
    {
      details: { key: key.key, expectedVersion: expected ?? null, actualVersion: actual ?? null },
    },
  );
}

/** Whether `key` falls under a list prefix. @internal */
export function prefixMatches(key: KvKey, prefix: { namespace: string; scopeId: string; keyPrefix?: string }): boolean {
  return (
    key.namespace === prefix.namespace && key.scopeId === prefix.scopeId && key.key.startsWith(prefix.keyPrefix ?? '')
  );
}
