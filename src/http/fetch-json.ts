import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { abortError, sleep } from '../util/abort.js';
import { backoffDelay } from '../util/retry.js';

/** Resolved request limits and retry policy of one HTTP source. */
export interface FetchPolicy {
  timeoutMs: number;
  maxResponseBytes: number;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

/** What a page request returns. */
export interface JsonResponse {
  body: Json;
  headers: Headers;
  status: number;
}

/** Called before each wait between attempts. */
export type OnRetry = (info: { attempt: number; delayMs: number; status?: number; reason: string }) => void;

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * GET `url` and parse its JSON body, with a per-request timeout, a size cap enforced while streaming, and bounded
 * retries: 429/503 wait for `Retry-After` (seconds or HTTP date), other 5xx, 408 and network errors back off
 * exponentially. `where` names the unit in error messages; the URL's query is never put in messages.
 */
export async function fetchJson(
  url: URL,
  init: { headers: Record<string, string>; signal: AbortSignal; policy: FetchPolicy; where: string; onRetry?: OnRetry },
): Promise<JsonResponse> {
  const { policy, signal, where } = init;
  const shown = `${url.origin}${url.pathname}`;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw abortError(signal, `HTTP read of ${where}`);
    let failure: { reason: string; status?: number; delayMs?: number; cause?: unknown; code?: 'timeout' };
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    const combined = AbortSignal.any([signal, timeout]);
    try {
      const res = await fetch(url, { headers: init.headers, signal: combined });
      if (res.ok) {
        const text = await readCapped(res, policy.maxResponseBytes, where, shown);
        return { body: parseJson(text, where, shown, res.status), headers: res.headers, status: res.status };
      }
      const snippet = await readSnippet(res);
      if (!RETRY_STATUS.has(res.status) && res.status < 500) {
        throw new IngestError(
          'source_failed',
          `HTTP ${res.status} from ${shown} for ${where}${snippet ? `: ${snippet}` : ''}`,
          {
            retryable: false,
            details: { status: res.status, url: shown },
          },
        );
      }
      failure = {
        reason: `HTTP ${res.status}`,
        status: res.status,
        delayMs: retryAfterMs(res.headers.get('retry-after')),
      };
    } catch (err) {
      if (IngestError.is(err)) throw err;
      if (signal.aborted) throw abortError(signal, `HTTP read of ${where}`);
      if (timeout.aborted)
        failure = { reason: `no response within ${policy.timeoutMs} ms`, code: 'timeout', cause: err };
      else failure = { reason: networkReason(err), cause: err };
    }
    if (attempt >= policy.maxAttempts) {
      throw new IngestError(
        failure.code ?? 'source_failed',
        `GET ${shown} for ${where} failed after ${attempt} attempts: ${failure.reason}`,
        {
          cause: failure.cause,
          retryable: true,
          // this layer spent its budget: the run's phase retry must not multiply it (ADR 0017)
          details: {
            status: failure.status,
            attempts: attempt,
            url: shown,
            ...(attempt > 1 && { retriedBy: 'store' }),
          },
        },
      );
    }
    let delayMs = backoffDelay(attempt, policy);
    if (failure.delayMs !== undefined) {
      if (failure.delayMs > policy.maxRetryAfterMs) {
        throw new IngestError(
          'source_failed',
          `GET ${shown} for ${where}: ${failure.reason} asks to retry after ${failure.delayMs} ms, more than maxRetryAfterMs (${policy.maxRetryAfterMs})`,
          {
            retryable: true,
            details: { status: failure.status, retryAfterMs: failure.delayMs, url: shown, retriedBy: 'store' },
          },
        );
      }
      delayMs = failure.delayMs;
    }
    init.onRetry?.({ attempt, delayMs, status: failure.status, reason: failure.reason });
    await sleep(delayMs, signal);
  }
}

/** Milliseconds to wait from a `Retry-After` header (delta-seconds or HTTP date); `undefined` when absent or unparsable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

async function readCapped(res: Response, cap: number, where: string, shown: string): Promise<string> {
  const tooLarge = (seen: number | string) =>
    new IngestError(
      'source_failed',
      `Response from ${shown} for ${where} is larger than maxResponseBytes (${cap}): ${seen} bytes`,
      {
        retryable: false,
        details: { maxResponseBytes: cap, url: shown },
      },
    );
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > cap) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(declared);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel().catch(() => {});
      throw tooLarge(`more than ${cap}`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** The first 200 characters of an error body, for the message (scrubbed by IngestError). */
async function readSnippet(res: Response): Promise<string> {
  try {
    const text = await readCapped(res, 16 * 1024, '', '');
    return text.replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return '';
  }
}

function parseJson(text: string, where: string, shown: string, status: number): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new IngestError('source_failed', `Response from ${shown} for ${where} (HTTP ${status}) is not JSON`, {
      cause: err,
      retryable: false,
      details: { url: shown, status },
    });
  }
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `network error ${cause.code}`;
  return err instanceof Error ? err.message : String(err);
}
