import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type HttpCheckpoint, HttpJsonSource, type HttpJsonSourceOptions } from '../../src/http/index.js';
import type { IngestionEvent } from '../../src/index.js';
import { IngestError } from '../../src/index.js';
import { collect, json, startServer, type TestServer, testContext } from './http-fixtures.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());
afterEach(() => {
  server.requests.length = 0;
});

const items = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => ({
    id: from + i,
    name: `item-${from + i}`,
    updated_at: new Date(Date.UTC(2024, 0, 1 + from + i)).toISOString(),
  }));

function source(unit: Partial<HttpJsonSourceOptions['units'][string]>, extra: Partial<HttpJsonSourceOptions> = {}) {
  return new HttpJsonSource({
    baseUrl: `${server.url}/api`,
    retry: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 4 },
    timeoutMs: 2000,
    ...extra,
    units: {
      things: { path: '/things', recordsPath: 'data.items', pagination: { style: 'none' }, ...unit },
    },
  });
}

async function readAll(src: HttpJsonSource, checkpoint: HttpCheckpoint | null = null, events?: IngestionEvent[]) {
  return collect(
    src.read(
      { unitId: 'things', mode: checkpoint ? 'incremental' : 'full', checkpoint },
      testContext('things', { events }),
    ),
  );
}

describe('HttpJsonSource pagination', () => {
  it('follows a cursor in the body through 3 pages, waiting out a 429 with Retry-After in the middle', async () => {
    const all = items(0, 9);
    let rateLimited = false;
    const t: number[] = [];
    server.handle((req, res) => {
      t.push(Date.now());
      const start = Number(req.query.cursor ?? 0);
      if (start === 3 && !rateLimited) {
        rateLimited = true;
        return json(res, { error: 'slow down' }, 429, { 'retry-after': '1' });
      }
      const next = start + 3 < all.length ? String(start + 3) : null;
      json(res, { data: { items: all.slice(start, start + 3) }, meta: { next } });
    });
    const events: IngestionEvent[] = [];
    const batches = await readAll(
      source({ pagination: { style: 'cursor', cursorPath: 'meta.next', cursorParam: 'cursor' } }),
      null,
      events,
    );
    expect(batches.map((b) => b.rows.length)).toEqual([3, 3, 3]);
    expect(batches.flatMap((b) => b.rows)).toEqual(all);
    expect(server.requests.map((r) => r.query.cursor)).toEqual([undefined, '3', '3', '6']);
    // Retry-After: 1 was honoured (not the 10 ms backoff).
    expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(950);
    expect(events.filter((e) => e.type === 'retry.scheduled')).toHaveLength(1);
  });

  it('pages by page number and size until a short page', async () => {
    const all = items(0, 5);
    server.handle((req, res) => {
      const page = Number(req.query.page);
      const size = Number(req.query.per_page);
      json(res, { data: { items: all.slice((page - 1) * size, page * size) } });
    });
    const batches = await readAll(
      source({ pagination: { style: 'page', pageParam: 'page', sizeParam: 'per_page', pageSize: 2 } }),
    );
    expect(batches.map((b) => b.rows.length)).toEqual([2, 2, 1]);
    expect(batches.flatMap((b) => b.rows)).toEqual(all);
  });

  it('pages by offset and limit, with fixed query parameters, and a body that is the array', async () => {
    const all = items(0, 4);
    server.handle((req, res) => {
      const off = Number(req.query.offset);
      json(res, all.slice(off, off + Number(req.query.limit)));
    });
    const batches = await readAll(
      source({
        recordsPath: '',
        query: { status: 'open' },
        pagination: { style: 'offset', offsetParam: 'offset', limitParam: 'limit', limit: 2 },
      }),
    );
    expect(batches.flatMap((b) => b.rows)).toEqual(all);
    expect(server.requests.map((r) => [r.query.offset, r.query.status])).toEqual([
      ['0', 'open'],
      ['2', 'open'],
      ['4', 'open'],
    ]);
  });

  it('follows Link rel="next" headers and refuses one pointing to another origin', async () => {
    const all = items(0, 4);
    server.handle((req, res) => {
      const p = Number(req.query.p ?? 0);
      const link =
        p < 1 ? `<${server.url}/api/things?p=${p + 1}>; rel="next", <${server.url}/api/things?p=0>; rel="first"` : '';
      json(res, { data: { items: all.slice(p * 2, p * 2 + 2) } }, 200, link ? { link } : {});
    });
    const batches = await readAll(source({ pagination: { style: 'link' } }));
    expect(batches.flatMap((b) => b.rows)).toEqual(all);

    server.handle((_req, res) =>
      json(res, { data: { items: all } }, 200, { link: '<http://evil.example/steal>; rel="next"' }),
    );
    await expect(readAll(source({ pagination: { style: 'link' } }))).rejects.toMatchObject({
      code: 'source_failed',
      retryable: false,
    });
  });
});

describe('HttpJsonSource incremental', () => {
  it('takes the checkpoint from the records, sends it as the parameter, and drops records at or before it', async () => {
    const all = items(0, 6);
    server.handle((req, res) => {
      const since = req.query.updated_since;
      // An inclusive API: updated_at >= since.
      json(res, { data: { items: since ? all.filter((r) => r.updated_at >= since) : all.slice(0, 4) } });
    });
    const src = source({ incremental: { param: 'updated_since', field: 'updated_at' } });
    const first = await readAll(src);
    expect(first.at(-1)!.checkpoint).toEqual({ since: all[3]!.updated_at });

    const second = await readAll(src, first.at(-1)!.checkpoint!);
    expect(server.requests.at(-1)!.query.updated_since).toBe(all[3]!.updated_at);
    expect(second.flatMap((b) => b.rows)).toEqual(all.slice(4));
    expect(second.at(-1)!.checkpoint).toEqual({ since: all[5]!.updated_at });

    // Nothing new: the checkpoint stays where it was (never the wall clock, never reset).
    server.handle((_req, res) => json(res, { data: { items: [all[5]] } }));
    const third = await readAll(src, second.at(-1)!.checkpoint!);
    expect(third.flatMap((b) => b.rows)).toEqual([]);
    expect(third.at(-1)!.checkpoint).toEqual({ since: all[5]!.updated_at });
  });

  it('compares epoch values numerically and keeps boundary records when the API filters strictly', async () => {
    const recs = [
      { id: 1, ts: 900 },
      { id: 2, ts: 1000 },
      { id: 3, ts: 20 },
    ];
    server.handle((_req, res) => json(res, { data: { items: recs } }));
    const src = source({ incremental: { param: 'since', field: 'ts', format: 'epoch', inclusive: false } });
    const batches = await readAll(src, { since: 1000 });
    expect(batches.flatMap((b) => b.rows)).toEqual(recs);
    expect(batches.at(-1)!.checkpoint).toEqual({ since: 1000 });
    expect(server.requests.at(-1)!.query.since).toBe('1000');
  });
});

describe('HttpJsonSource failures', () => {
  it('fails a 4xx at once as non-retryable source_failed naming unit and status, never the token', async () => {
    const token = 'tok-secret-4xx-0123456789';
    process.env.HTTP_TEST_TOKEN_4XX = token;
    server.handle((req, res) => json(res, { error: `forbidden for ${req.headers.authorization}` }, 403));
    const src = source({}, { auth: { type: 'bearer', tokenEnv: 'HTTP_TEST_TOKEN_4XX' } });
    const err = await readAll(src).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('403');
    expect(err.message).toContain('things');
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(JSON.stringify({ m: err.message, d: err.details, s: err.stack })).not.toContain(token);
  });

  it('follows redirects but never sends the token to another origin', async () => {
    const other = await startServer();
    try {
      other.handle((_req, res) => json(res, { data: { items: [{ from: 'other' }] } }));
      server.handle((_req, res) => {
        res.writeHead(302, { location: `${other.url}/moved` });
        res.end();
      });
      process.env.HTTP_TEST_TOKEN_REDIRECT = 'tok-redirect-0123456789';
      const batches = await readAll(source({}, { auth: { type: 'bearer', tokenEnv: 'HTTP_TEST_TOKEN_REDIRECT' } }));
      expect(batches.flatMap((b) => b.rows)).toEqual([{ from: 'other' }]);
      expect(server.requests[0]!.headers.authorization).toBe('Bearer tok-redirect-0123456789');
      expect(other.requests[0]!.headers.authorization).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('reads the token from an injected secret provider', async () => {
    server.handle((req, res) =>
      json(res, { data: { items: [{ auth: req.headers.authorization === 'Bearer from-vault-xyz' }] } }),
    );
    const src = new HttpJsonSource({
      baseUrl: server.url,
      auth: { type: 'bearer', token: { secretRef: 'api/token' } },
      secrets: async (name) => (name === 'api/token' ? 'from-vault-xyz' : ''),
      units: { things: { path: 'things', recordsPath: 'data.items', pagination: { style: 'none' } } },
    });
    expect((await readAll(src)).flatMap((b) => b.rows)).toEqual([{ auth: true }]);
    expect(new IngestError('source_failed', 'echo from-vault-xyz').message).not.toContain('from-vault-xyz');
  });

  it('fails with config_invalid when the token variable is missing', async () => {
    delete process.env.HTTP_TEST_TOKEN_MISSING;
    const src = source({}, { auth: { type: 'bearer', tokenEnv: 'HTTP_TEST_TOKEN_MISSING' } });
    await expect(readAll(src)).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringContaining('HTTP_TEST_TOKEN_MISSING'),
    });
  });

  it('retries 5xx with backoff and gives up after maxAttempts as retryable source_failed', async () => {
    let calls = 0;
    server.handle((_req, res) => {
      calls++;
      if (calls <= 2) return json(res, { error: 'boom' }, 502);
      json(res, { data: { items: [{ id: 1 }] } });
    });
    expect((await readAll(source({}))).flatMap((b) => b.rows)).toEqual([{ id: 1 }]);
    expect(calls).toBe(3);

    server.handle((_req, res) => json(res, { error: 'down' }, 503));
    server.requests.length = 0;
    const err = await readAll(source({})).catch((e) => e);
    expect(err).toMatchObject({ code: 'source_failed', retryable: true });
    expect(err.message).toContain('503');
    expect(server.requests).toHaveLength(4);
  });

  it('retries network errors and then fails as retryable source_failed naming the cause', async () => {
    const gone = await startServer();
    const url = gone.url;
    await gone.close();
    const src = new HttpJsonSource({
      baseUrl: url,
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
      units: { things: { path: '/things', recordsPath: '', pagination: { style: 'none' } } },
    });
    const events: IngestionEvent[] = [];
    const err = await readAll(src, null, events).catch((e) => e);
    expect(err).toMatchObject({ code: 'source_failed', retryable: true });
    expect(err.message).toMatch(/after 3 attempts: network error ECONNREFUSED/);
    expect(events.filter((e) => e.type === 'retry.scheduled')).toHaveLength(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    let calls = 0;
    server.handle((_req, res) => {
      if (calls++ === 0) return json(res, {}, 429, { 'retry-after': new Date(Date.now() + 2000).toUTCString() });
      json(res, { data: { items: [{ id: 1 }] } });
    });
    const t0 = Date.now();
    await readAll(source({}));
    // HTTP dates have 1 s resolution: the wait is between 1 and 2 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('stops waiting on Retry-After as soon as the signal aborts', async () => {
    server.handle((_req, res) => json(res, {}, 429, { 'retry-after': '30' }));
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    const src = source({}, { retry: { maxAttempts: 3 } });
    const err = await collect(
      src.read({ unitId: 'things', mode: 'full', checkpoint: null }, testContext('things', { signal: ac.signal })),
    ).catch((e) => e);
    expect(err).toMatchObject({ code: 'aborted' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('times out a server that never answers', async () => {
    server.handle(() => {});
    const err = await readAll(source({}, { timeoutMs: 200, retry: { maxAttempts: 2, baseDelayMs: 10 } })).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'timeout', retryable: true });
    expect(server.requests).toHaveLength(2);
  });

  it('enforces maxResponseBytes while the body streams, without reading the rest', async () => {
    let written = 0;
    let closed = false;
    server.handle(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('close', () => {
        closed = true;
      });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      res.write('{"data":{"items":["');
      for (let i = 0; i < 1600 && !closed; i++) {
        written += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => setTimeout(r, 5));
      }
      res.end('"]}}');
    });
    const err = await readAll(source({}, { maxResponseBytes: 1024 * 1024 })).catch((e) => e);
    expect(err).toMatchObject({ code: 'source_failed', retryable: false });
    expect(err.message).toContain('maxResponseBytes');
    await new Promise((r) => setTimeout(r, 100));
    expect(written).toBeLessThan(20 * 1024 * 1024); // far less than the 100 MiB the server would send
  });

  it('refuses a response whose records path is not an array', async () => {
    server.handle((_req, res) => json(res, { data: { items: 'nope' } }));
    await expect(readAll(source({}))).rejects.toMatchObject({ code: 'source_failed', retryable: false });
  });

  it('validates the config, listing every issue', () => {
    let err: unknown;
    try {
      new HttpJsonSource({
        baseUrl: 'ftp://x',
        maxPageSize: 10,
        units: {
          a: {
            path: '/a',
            recordsPath: 'x',
            pagination: { style: 'page', pageParam: 'p', sizeParam: 's', pageSize: 50 },
          },
        },
      } as HttpJsonSourceOptions);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'config_invalid' });
    const paths = (err as IngestError).details.issues as Array<{ path: string }>;
    expect(paths.map((i) => i.path)).toEqual(expect.arrayContaining(['baseUrl', 'units.a.pagination.pageSize']));
  });
});

describe('HttpJsonSource metadata', () => {
  it('lists configured units and previews a few rows', async () => {
    server.handle((_req, res) => json(res, { data: { items: items(0, 10) } }));
    const src = source({ incremental: { param: 'updated_since', field: 'updated_at' } });
    const meta = await src.collectMetadata(testContext('things'));
    expect(meta).toEqual([expect.objectContaining({ unitId: 'things', cursorColumns: ['updated_at'] })]);
    const preview = await src.preview({ unitId: 'things', limit: 3 }, testContext('things'));
    expect(preview.rows).toEqual(items(0, 3));
    await expect(src.preview({ unitId: 'nope', limit: 3 }, testContext('nope'))).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(src.descriptor).toMatchObject({ id: 'http.json', family: 'http', role: 'source' });
  });
});
