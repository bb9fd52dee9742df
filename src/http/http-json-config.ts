import { z } from 'zod';

const name = (what: string) =>
  z.string({ error: `Expected \`${what}\` to be a string` }).min(1, { error: `Expected \`${what}\` to be non-empty` });
const posInt = (what: string) =>
  z
    .number({ error: `Expected \`${what}\` to be a positive integer` })
    .int({ error: `Expected \`${what}\` to be a positive integer` })
    .positive({ error: `Expected \`${what}\` to be a positive integer` });

const paginationSchema = z.discriminatedUnion('style', [
  z
    .object({
      style: z.literal('cursor'),
      /** Where the next cursor is in the response body, e.g. `'meta.next_cursor'`. */
      cursorPath: name('cursorPath'),
      /** Query parameter that carries the cursor, e.g. `'cursor'`. */
      cursorParam: name('cursorParam'),
      sizeParam: name('sizeParam').optional(),
      pageSize: posInt('pageSize').optional(),
    })
    .strict(),
  z
    .object({
      style: z.literal('page'),
      pageParam: name('pageParam'),
      sizeParam: name('sizeParam'),
      pageSize: posInt('pageSize'),
      startPage: z.number().int().nonnegative().optional(),
    })
    .strict(),
  z
    .object({
      style: z.literal('offset'),
      offsetParam: name('offsetParam'),
      limitParam: name('limitParam'),
      limit: posInt('limit'),
    })
    .strict(),
  z
    .object({
      style: z.literal('link'),
      sizeParam: name('sizeParam').optional(),
      pageSize: posInt('pageSize').optional(),
    })
    .strict(),
  z.object({ style: z.literal('none') }).strict(),
]);

const incrementalSchema = z
  .object({
    /** Query parameter the API filters on, e.g. `'updated_since'`. */
    param: name('incremental.param'),
    /**
     * The record field the checkpoint is taken from, as a one-entry list: `['updated_at']` (a dotted path is allowed).
     * The name every source uses for its cursor (docs/concepts.md, "Cursors").
     */
    cursorColumns: z
      .array(name('incremental.cursorColumns[]'))
      .length(1, { error: 'Expected `incremental.cursorColumns` to name one field' })
      .optional(),
    /** @deprecated Use `cursorColumns: [field]`; removed in 0.3. */
    field: name('incremental.field').optional(),
    /** How the field's values compare and are sent: ISO-8601 strings or epoch numbers. @defaultValue 'iso' */
    format: z.enum(['iso', 'epoch']).optional(),
    /**
     * Whether the API's parameter is inclusive (`>=`): records whose field equals the checkpoint come back and are
     * dropped client-side. Set `false` for an API that filters strictly (`>`). @defaultValue true
     */
    inclusive: z.boolean().optional(),
  })
  .strict()
  .refine((i) => (i.cursorColumns === undefined) !== (i.field === undefined), {
    error: 'Expected `incremental.cursorColumns` (or the deprecated `incremental.field`), not both',
  });

/** The field an incremental unit's checkpoint is taken from (`cursorColumns[0]`, or the deprecated `field`). @internal */
export const cursorFieldOf = (inc: { cursorColumns?: string[]; field?: string }): string =>
  inc.cursorColumns?.[0] ?? inc.field!;

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const unitSchema = z
  .object({
    /** Path under `baseUrl`, e.g. `'/v1/issues'`. */
    path: name('path').refine((p) => !/^[a-z][a-z0-9+.-]*:/i.test(p), {
      error: 'Expected `path` to be relative to `baseUrl`',
    }),
    /** Dotted path of the records array in the response, e.g. `'data.items'`; `''` when the body is the array. */
    recordsPath: z.string(),
    pagination: paginationSchema,
    incremental: incrementalSchema.optional(),
    /** Fixed query parameters. */
    query: z.record(z.string(), scalar).optional(),
    /** Primary key fields of the records (informational; pass it to `runUnit` for merge sinks). */
    primaryKey: z.array(z.string().min(1)).min(1).optional(),
    title: z.string().optional(),
  })
  .strict();

const authSchema = z.union([
  z.object({ type: z.literal('bearer'), tokenEnv: name('auth.tokenEnv') }).strict(),
  z
    .object({ type: z.literal('bearer'), token: z.object({ secretRef: name('auth.token.secretRef') }).strict() })
    .strict(),
]);

/**
 * The JSON config of {@link HttpJsonSource} (what the registry validates and exports as JSON Schema).
 * @public
 */
export const httpJsonConfigSchema = z
  .object({
    baseUrl: z.url({ protocol: /^https?$/, error: 'Expected `baseUrl` to be an http(s) URL' }),
    units: z
      .record(z.string().min(1), unitSchema)
      .refine((u) => Object.keys(u).length > 0, { error: 'Expected at least one unit' }),
    /** Extra request headers. Values of headers named like a credential are registered as secrets. */
    headers: z.record(z.string(), z.string()).optional(),
    auth: authSchema.optional(),
    /** Largest page size a unit may request. @defaultValue 1000 */
    maxPageSize: posInt('maxPageSize').optional(),
    /** A response body larger than this fails the read (`source_failed`), checked while streaming. @defaultValue 32 MiB */
    maxResponseBytes: posInt('maxResponseBytes').optional(),
    /** Per-request timeout. @defaultValue 30000 */
    timeoutMs: posInt('timeoutMs').optional(),
    retry: z
      .object({
        /** Attempts per request, including the first. @defaultValue 5 */
        maxAttempts: posInt('retry.maxAttempts').max(50).optional(),
        /** @defaultValue 500 */
        baseDelayMs: z.number().int().nonnegative().optional(),
        /** @defaultValue 30000 */
        maxDelayMs: z.number().int().nonnegative().optional(),
        /** A `Retry-After` longer than this fails the request instead of waiting. @defaultValue 120000 */
        maxRetryAfterMs: z.number().int().nonnegative().optional(),
      })
      .strict()
      .optional(),
    /** Safety stop: more pages than this in one read fails it. @defaultValue 100000 */
    maxPages: posInt('maxPages').optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const cap = cfg.maxPageSize ?? 1000;
    for (const [unitId, unit] of Object.entries(cfg.units)) {
      const p = unit.pagination;
      const size =
        p.style === 'page' || p.style === 'cursor' || p.style === 'link'
          ? p.pageSize
          : p.style === 'offset'
            ? p.limit
            : undefined;
      if (size !== undefined && size > cap) {
        ctx.addIssue({
          code: 'custom',
          path: ['units', unitId, 'pagination', p.style === 'offset' ? 'limit' : 'pageSize'],
          message: `Expected page size ${size} to be at most \`maxPageSize\` (${cap})`,
        });
      }
      if ((p.style === 'cursor' || p.style === 'link') && (p.pageSize === undefined) !== (p.sizeParam === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['units', unitId, 'pagination'],
          message: 'Expected `sizeParam` and `pageSize` together',
        });
      }
    }
  });

/** Parsed config of {@link HttpJsonSource}. @public */
export type HttpJsonConfig = z.infer<typeof httpJsonConfigSchema>;
/** One unit of an {@link HttpJsonConfig}. @public */
export type HttpUnitConfig = HttpJsonConfig['units'][string];
/** Pagination of an {@link HttpUnitConfig}. @public */
export type HttpPagination = HttpUnitConfig['pagination'];
