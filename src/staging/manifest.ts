import { z } from 'zod';
import type { ObjectStore } from '../contracts/object-store.js';
import { FIELD_TYPES, type RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/** Format tag written into every manifest. */
export const MANIFEST_FORMAT = 'nucleus.staging.manifest';

const recordSchemaSchema = z.object({
  fields: z.array(
    z.object({
      name: z.string(),
      type: z.enum(FIELD_TYPES as unknown as [string, ...string[]]),
      nullable: z.boolean(),
      // type details and the native type (issue 10): kept as written, so a sink recreates the column exactly
      logical: z.looseObject({}).optional(),
      native: z.object({ dialect: z.enum(['postgres', 'mysql']), type: z.string() }).optional(),
    }),
  ),
  primaryKey: z.array(z.string()).optional(),
});

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 date');

/** zod schema of an object-store session ref (extra JSON fields are kept). */
export const objectStoreRefSchema = z.looseObject({
  provider: z.literal('object-store'),
  sessionId: z.string().min(1),
  runId: z.string().min(1),
  workspaceId: z.string().min(1),
  endpointId: z.string().min(1),
  unitId: z.string(),
  sinkId: z.string().optional(),
  vendor: z.string().optional(),
  bucket: z.string(),
  prefix: z.string(),
  runDir: z.string(),
  codec: z.string(),
});

/** zod schema of one slice entry. */
export const manifestSliceSchema = z.object({
  index: z.number().int().min(0),
  key: z.string().min(1),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
  /** The store's etag of the object when it is a content hash (`ObjectStore.contentEtags`), from the upload. */
  etag: z.string().min(1).max(200).optional(),
  codec: z.string().min(1),
  contentType: z.string(),
  schema: recordSchemaSchema.optional(),
  writtenAt: isoDate,
});

/** zod schema of `manifest.json`. */
export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(1),
    ref: objectStoreRefSchema,
    createdAt: isoDate,
    updatedAt: isoDate,
    sealedAt: isoDate.optional(),
    fence: z.number().int().min(0).optional(),
    schema: recordSchemaSchema.optional(),
    slices: z.array(manifestSliceSchema),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<number>();
    m.slices.forEach((s, i) => {
      if (seen.has(s.index))
        ctx.addIssue({ code: 'custom', path: ['slices', i, 'index'], message: `duplicate slice index ${s.index}` });
      seen.add(s.index);
      if (!s.key.startsWith(`${m.ref.runDir}/`) || s.key.slice(m.ref.runDir.length + 1).includes('/')) {
        ctx.addIssue({
          code: 'custom',
          path: ['slices', i, 'key'],
          message: 'must be an object directly in the run directory',
        });
      }
    });
  });

/** The session ref of an {@link ObjectStoreStagingProvider} session. @public */
export type ObjectStoreSessionRef = z.infer<typeof objectStoreRefSchema> & {
  [extra: string]: import('../contracts/values.js').Json | undefined;
};

/**
 * One finished slice in `manifest.json`: where it is and what a reader must find there.
 * @public
 */
export interface StagingManifestSlice {
  index: number;
  /** Object key of the slice. */
  key: string;
  rows: number;
  /** Exact object size. */
  bytes: number;
  /** Hex sha256 of the object's bytes. */
  sha256: string;
  /** The store's etag of the object, recorded when the store's etags are content hashes (`ObjectStore.contentEtags`: S3). */
  etag?: string;
  /** Codec id the slice was written with. */
  codec: string;
  contentType: string;
  /** Schema the slice was encoded with. */
  schema?: RecordSchema;
  /** ISO-8601. */
  writtenAt: string;
}

/**
 * `manifest.json` of an object-store staging session (zod-validated whenever it is read).
 * @public
 */
export interface StagingManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  ref: ObjectStoreSessionRef;
  /** ISO-8601. */
  createdAt: string;
  /** ISO-8601 of the last change. */
  updatedAt: string;
  /** ISO-8601; set by `seal()`. */
  sealedAt?: string;
  /**
   * Highest fencing token (unit lease version) the session was claimed with (`StagingSession.fence`). Manifest
   * changes through a session claimed with a lower token are refused with `lease_lost`.
   */
  fence?: number;
  /** Schema of the session (the first slice schema recorded, unless set otherwise). */
  schema?: RecordSchema;
  /** Finished slices, by index. */
  slices: StagingManifestSlice[];
}

const decoder = new TextDecoder('utf-8', { fatal: true });
/** A manifest larger than this is refused (it would be a corrupt or hostile one). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * Read and validate `manifest.json`; `undefined` when the object does not exist.
 * @throws IngestError `staging_corrupt` when it is not valid JSON or fails the schema; `staging_failed` on I/O.
 */
export async function readManifest(
  store: ObjectStore,
  key: string,
  signal?: AbortSignal,
): Promise<StagingManifest | undefined> {
  // A store without atomic overwrites (s3rver, some NAS) can hand out a manifest mid-rewrite: when the bytes
  // read disagree with the size `head()` just reported, read again before calling the manifest corrupt.
  for (let attempt = 1; ; attempt++) {
    const read = await readManifestBytes(store, key, signal);
    if (!read) return undefined;
    if (read.bytes.byteLength !== read.size && attempt < 4) {
      await new Promise((r) => setTimeout(r, 25 * attempt));
      continue;
    }
    return parseManifest(read.bytes, key);
  }
}

async function readManifestBytes(
  store: ObjectStore,
  key: string,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array; size: number } | undefined> {
  try {
    const info = await store.head(key);
    if (!info) return undefined;
    if (info.size > MAX_MANIFEST_BYTES) {
      throw corrupt(key, `it is ${info.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of await store.get(key, { signal })) {
      size += chunk.byteLength;
      if (size > MAX_MANIFEST_BYTES) throw corrupt(key, `it grew past the ${MAX_MANIFEST_BYTES}-byte limit`);
      chunks.push(chunk);
    }
    return { bytes: Buffer.concat(chunks), size: info.size };
  } catch (err) {
    if (IngestError.is(err, 'not_found')) return undefined;
    throw IngestError.wrap(err, 'staging_failed', `Could not read staging manifest ${key}`, { key });
  }
}

/**
 * Parse and validate manifest bytes.
 * @throws IngestError `staging_corrupt`.
 */
export function parseManifest(bytes: Uint8Array, key: string): StagingManifest {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw corrupt(key, `it is not valid JSON (${(err as Error).message})`, err);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new IngestError('staging_corrupt', `Staging manifest ${key} is invalid: ${issues.slice(0, 10).join('; ')}`, {
      details: { key, issues },
    });
  }
  return parsed.data as StagingManifest;
}

/** Write `manifest.json` (pretty-printed, slices sorted by index). */
export async function writeManifest(
  store: ObjectStore,
  key: string,
  manifest: StagingManifest,
  signal?: AbortSignal,
): Promise<void> {
  manifest.slices.sort((a, b) => a.index - b.index);
  const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  try {
    await store.put(key, body, { contentType: 'application/json', signal });
  } catch (err) {
    throw IngestError.wrap(err, 'staging_failed', `Could not write staging manifest ${key}`, { key });
  }
}

function corrupt(key: string, why: string, cause?: unknown): IngestError {
  return new IngestError('staging_corrupt', `Staging manifest ${key} is corrupt: ${why}`, { cause, details: { key } });
}
