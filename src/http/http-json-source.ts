import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type { ReadRequest, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { Json, Row } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { registerSecret } from '../errors/redact.js';
import { type FetchPolicy, fetchJson, type JsonResponse } from './fetch-json.js';
import { cursorFieldOf, type HttpJsonConfig, type HttpUnitConfig, httpJsonConfigSchema } from './http-json-config.js';
import { getPath, nextLink } from './json-path.js';

/**
 * Checkpoint of an incremental HTTP unit: the largest value of the unit's cursor field (`incremental.cursorColumns`)
 * seen in the records (never the wall clock), sent as the `incremental.param` query parameter on the next run.
 * @public
 */
export interface HttpCheckpoint {
  [key: string]: Json;
  /** Largest cursor field value seen so far, as the API returned it. */
  since: string | number;
}

/** Resolves a secret by name (e.g. from a vault). Its result is registered so it never appears in errors or logs. @public */
export type SecretProvider = (name: string) => Promise<string>;

/** Options of {@link HttpJsonSource}: the JSON config plus injected services. @public */
export type HttpJsonSourceOptions = HttpJsonConfig & {
  /** Resolves `auth.token.secretRef`. */
  secrets?: SecretProvider;
};

/**
 * Descriptor of {@link HttpJsonSource}: id `http.json`, family `http`.
 * @public
 */
export const httpJsonDescriptor: EndpointDescriptor<HttpJsonConfig> = {
  id: 'http.json',
  role: 'source',
  family: 'http',
  title: 'HTTP JSON API',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: httpJsonConfigSchema,
};

const SECRET_HEADER = /auth|token|key|secret|cookie|session/i;

/**
 * A source that reads JSON records from an HTTP API with the platform `fetch`. One instance serves many units,
 * each a resource path with its own records path, pagination (`cursor` in the body, `page`, `offset`, RFC 8288
 * `Link` header, or `none`) and optional incremental parameter.
 *
 * Each batch is one page, carrying the checkpoint after it. `429` (waiting for `Retry-After`, seconds or HTTP date),
 * `5xx`, `408` and network errors are retried with backoff up to `retry.maxAttempts`; any other `4xx` fails at once.
 * Response bodies are capped while they stream (`maxResponseBytes`). The bearer token is read from an environment
 * variable or a {@link SecretProvider} and registered as a secret: it never appears in an error, log or event.
 *
 * Incremental units take the checkpoint from the records: the largest value of the `incremental.cursorColumns`
 * field. It is sent as `incremental.param` on the next run; since most APIs treat that parameter as inclusive
 * (`>=`), records whose field is `<=` the checkpoint are dropped client-side (set `inclusive: false` for an API
 * that filters with `>`). Checkpoints of intermediate pages are only safe resume points if the API returns records
 * in ascending field order; the run's final checkpoint is always the maximum over every page.
 *
 * @example
 * ```ts
 * import { HttpJsonSource } from '@nucleus/ingestion/http';
 * const source = new HttpJsonSource({
 *   baseUrl: 'https://api.example.com/v1',
 *   auth: { type: 'bearer', tokenEnv: 'EXAMPLE_TOKEN' },
 *   units: {
 *     issues: {
 *       path: '/issues',
 *       recordsPath: 'data.items',
 *       pagination: { style: 'cursor', cursorPath: 'meta.next', cursorParam: 'cursor' },
 *       incremental: { param: 'updated_since', cursorColumns: ['updated_at'] },
 *     },
 *   },
 * });
 * ```
 * @throws IngestError `config_invalid` listing every issue of a malformed config.
 * @public
 */
export class HttpJsonSource implements SourceEndpoint<HttpCheckpoint> {
  readonly descriptor: EndpointDescriptor<HttpJsonConfig> = httpJsonDescriptor;
  readonly #config: HttpJsonConfig;
  readonly #secrets: SecretProvider | undefined;
  readonly #policy: FetchPolicy;
  #headers: Promise<Record<string, string>> | undefined;

  /**
   * Validate the config; nothing is fetched until the first read.
   * @throws IngestError `config_invalid` listing every issue.
   */
  constructor(options: HttpJsonSourceOptions) {
    const { secrets, ...config } = (options ?? {}) as HttpJsonSourceOptions;
    if (secrets !== undefined && typeof secrets !== 'function') {
      throw new IngestError('config_invalid', 'Invalid HttpJsonSource options: secrets: Expected a function');
    }
    const parsed = httpJsonConfigSchema.safeParse(config);
    if (!parsed.success) throw configInvalid('Invalid HttpJsonSource config', parsed.error.issues);
    this.#config = parsed.data;
    this.#secrets = secrets;
    const r = parsed.data.retry ?? {};
    this.#policy = {
      timeoutMs: parsed.data.timeoutMs ?? 30_000,
      maxResponseBytes: parsed.data.maxResponseBytes ?? 32 * 1024 * 1024,
      maxAttempts: r.maxAttempts ?? 5,
      baseDelayMs: r.baseDelayMs ?? 500,
      maxDelayMs: r.maxDelayMs ?? 30_000,
      maxRetryAfterMs: r.maxRetryAfterMs ?? 120_000,
    };
    for (const [k, v] of Object.entries(parsed.data.headers ?? {})) if (SECRET_HEADER.test(k)) registerSecret(v);
  }

  /**
   * The configured units, with their cursor field when incremental.
   */
  async collectMetadata(_ctx: IngestionContext): Promise<UnitMetadata[]> {
    return Object.entries(this.#config.units).map(([unitId, u]) => ({
      unitId,
      title: u.title ?? unitId,
      kind: 'resource',
      ...(u.incremental ? { cursorColumns: [cursorFieldOf(u.incremental)] } : {}),
      capabilities: u.incremental
        ? ['metadata.preview', 'ingest.full', 'ingest.incremental']
        : ['metadata.preview', 'ingest.full'],
    }));
  }

  /** Whether the unit is configured (nothing is fetched). @throws IngestError `not_found` for an unknown unit */
  async checkUnit(unitId: string): Promise<void> {
    this.#unit(unitId);
  }

  /**
   * Up to `limit` records of a unit, from its first pages.
   * @throws IngestError `not_found` for an unknown unit; `source_failed` as {@link HttpJsonSource.read}.
   */
  async preview(req: { unitId: string; limit: number }, ctx: IngestionContext): Promise<{ rows: Row[] }> {
    const rows: Row[] = [];
    if (req.limit <= 0) return { rows };
    for await (const batch of this.read({ unitId: req.unitId, mode: 'full', checkpoint: null }, ctx)) {
      for (const row of batch.rows) {
        rows.push(row);
        if (rows.length >= req.limit) return { rows };
      }
    }
    return { rows };
  }

  /**
   * Read a unit page by page; each batch carries the checkpoint after it.
   * @throws IngestError `not_found` for an unknown unit; `config_invalid` when the token's environment variable or
   * secret provider is missing; `source_failed` for HTTP errors (retryable after exhausted retries of 429/5xx/network
   * errors, not retryable for other 4xx, non-JSON bodies, a missing records array, or a body over `maxResponseBytes`);
   * `timeout` when every attempt timed out; `aborted` when `ctx.signal` fires.
   */
  async *read(req: ReadRequest<HttpCheckpoint>, ctx: IngestionContext): AsyncGenerator<SourceBatch<HttpCheckpoint>> {
    const unit = this.#unit(req.unitId);
    const inc = unit.incremental;
    const field = inc && cursorFieldOf(inc);
    const epoch = inc?.format === 'epoch';
    const since = inc && req.mode === 'incremental' && req.checkpoint ? req.checkpoint.since : undefined;
    const dropAtOrBelow = since !== undefined && inc?.inclusive !== false ? rank(since, epoch) : undefined;
    let max: string | number | undefined = since;
    let maxRank = since === undefined ? undefined : rank(since, epoch);
    let warned = false;
    const headers = await this.#resolveHeaders();
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(unit.query ?? {})) params[k] = String(v);
    if (inc && since !== undefined) params[inc.param] = String(since);

    for await (const records of this.#pages(req.unitId, unit, params, headers, ctx)) {
      const rows: Row[] = [];
      for (const record of records) {
        if (field) {
          const value = getPath(record, field);
          const r = typeof value === 'string' || typeof value === 'number' ? rank(value, epoch) : Number.NaN;
          if (Number.isNaN(r)) {
            if (!warned) {
              ctx.logger.warn(
                `HTTP unit ${req.unitId}: a record lacks a comparable "${field}"; it is kept, the checkpoint ignores it`,
              );
              warned = true;
            }
          } else {
            if (dropAtOrBelow !== undefined && r <= dropAtOrBelow) continue;
            if (maxRank === undefined || r > maxRank) {
              maxRank = r;
              max = value as string | number;
            }
          }
        }
        rows.push(record as Row);
      }
      yield max === undefined ? { rows } : { rows, checkpoint: { since: max } };
    }
  }

  #unit(unitId: string): HttpUnitConfig {
    const unit = Object.hasOwn(this.#config.units, unitId) ? this.#config.units[unitId] : undefined;
    if (!unit) {
      throw new IngestError(
        'not_found',
        `HTTP source has no unit "${unitId}" (configured: ${Object.keys(this.#config.units).join(', ')})`,
        {
          details: { unitId },
        },
      );
    }
    return unit;
  }

  #resolveHeaders(): Promise<Record<string, string>> {
    this.#headers ??= this.#buildHeaders().catch((err) => {
      this.#headers = undefined;
      throw err;
    });
    return this.#headers;
  }

  async #buildHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/json', ...(this.#config.headers ?? {}) };
    const auth = this.#config.auth;
    if (!auth) return headers;
    let token: string | undefined;
    if ('tokenEnv' in auth) {
      token = process.env[auth.tokenEnv];
      if (!token)
        throw new IngestError(
          'config_invalid',
          `HTTP source: environment variable ${auth.tokenEnv} (auth.tokenEnv) is not set`,
        );
    } else {
      if (!this.#secrets) {
        throw new IngestError(
          'config_invalid',
          `HTTP source: auth.token.secretRef "${auth.token.secretRef}" needs a \`secrets\` provider`,
        );
      }
      try {
        token = await this.#secrets(auth.token.secretRef);
      } catch (err) {
        throw IngestError.wrap(
          err,
          'source_failed',
          `HTTP source: secret provider failed for "${auth.token.secretRef}"`,
        );
      }
      if (typeof token !== 'string' || token === '') {
        throw new IngestError(
          'config_invalid',
          `HTTP source: secret "${auth.token.secretRef}" resolved to an empty value`,
        );
      }
    }
    registerSecret(token);
    headers.authorization = `Bearer ${token}`;
    return headers;
  }

  async *#pages(
    unitId: string,
    unit: HttpUnitConfig,
    params: Record<string, string>,
    headers: Record<string, string>,
    ctx: IngestionContext,
  ): AsyncGenerator<Json[]> {
    const base = new URL(this.#config.baseUrl);
    const where = `unit ${unitId} of endpoint ${ctx.endpointId}`;
    const maxPages = this.#config.maxPages ?? 100_000;
    const p = unit.pagination;
    let url: URL | undefined = buildUrl(this.#config.baseUrl, unit.path, params);
    let page = p.style === 'page' ? (p.startPage ?? 1) : 0;
    let offset = 0;
    const seenCursors = new Set<string>();
    for (let n = 1; url; n++) {
      if (n > maxPages) {
        throw new IngestError('source_failed', `HTTP ${where} returned more than maxPages (${maxPages}) pages`, {
          retryable: false,
        });
      }
      if (p.style === 'page') {
        url.searchParams.set(p.pageParam, String(page));
        url.searchParams.set(p.sizeParam, String(p.pageSize));
      } else if (p.style === 'offset') {
        url.searchParams.set(p.offsetParam, String(offset));
        url.searchParams.set(p.limitParam, String(p.limit));
      } else if ((p.style === 'cursor' || p.style === 'link') && p.sizeParam && n === 1) {
        url.searchParams.set(p.sizeParam, String(p.pageSize));
      }
      const res = await fetchJson(url, {
        headers,
        signal: ctx.signal,
        policy: this.#policy,
        where,
        onRetry: (info) => {
          ctx.logger.warn(`HTTP ${where}: ${info.reason}, retrying in ${info.delayMs} ms (attempt ${info.attempt})`);
          ctx.emit({
            type: 'retry.scheduled',
            phase: 'export',
            attempt: info.attempt,
            delayMs: info.delayMs,
            code: 'source_failed',
            at: new Date().toISOString(),
            runId: ctx.runId,
            workspaceId: ctx.workspaceId,
            endpointId: ctx.endpointId,
            unitId: ctx.unitId,
          });
        },
      });
      const records = extractRecords(res, unit.recordsPath, where);
      yield records;
      url = nextUrl();

      function nextUrl(): URL | undefined {
        switch (p.style) {
          case 'none':
            return undefined;
          case 'page':
            page++;
            return records.length < p.pageSize ? undefined : url;
          case 'offset':
            offset += records.length;
            return records.length < p.limit ? undefined : url;
          case 'cursor': {
            const cursor = getPath(res.body, p.cursorPath);
            if (cursor === null || cursor === undefined || cursor === '' || records.length === 0) return undefined;
            const text = typeof cursor === 'object' ? JSON.stringify(cursor) : String(cursor);
            if (seenCursors.has(text)) {
              throw new IngestError(
                'source_failed',
                `HTTP ${where}: the API returned cursor "${text}" twice (pagination loop)`,
                {
                  retryable: false,
                },
              );
            }
            seenCursors.add(text);
            url!.searchParams.set(p.cursorParam, text);
            return url;
          }
          case 'link': {
            const target = nextLink(res.headers.get('link'));
            if (!target) return undefined;
            const next = new URL(target, url);
            if (next.origin !== base.origin) {
              throw new IngestError(
                'source_failed',
                `HTTP ${where}: Link rel="next" points to another origin (${next.origin}); refused`,
                {
                  retryable: false,
                },
              );
            }
            return next;
          }
        }
      }
    }
  }
}

function buildUrl(baseUrl: string, path: string, params: Record<string, string>): URL {
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

function extractRecords(res: JsonResponse, recordsPath: string, where: string): Json[] {
  const records = getPath(res.body, recordsPath);
  if (!Array.isArray(records)) {
    throw new IngestError(
      'source_failed',
      `HTTP ${where}: expected an array at recordsPath "${recordsPath}" in the response`,
      {
        retryable: false,
        details: { recordsPath },
      },
    );
  }
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r === null || typeof r !== 'object' || Array.isArray(r)) {
      throw new IngestError('source_failed', `HTTP ${where}: record ${i} at "${recordsPath}" is not an object`, {
        retryable: false,
        details: { recordsPath, index: i },
      });
    }
  }
  return records;
}

/** A number that orders values of the incremental field; `NaN` when the value is not comparable. */
function rank(value: string | number, epoch: boolean): number {
  if (epoch) return typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
  return typeof value === 'string' ? Date.parse(value) : Number.NaN;
}
