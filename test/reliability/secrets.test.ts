/**
 * Secrets: canary secrets (a PostgreSQL password, an AWS secret key, an HTTP bearer token) are planted in the
 * endpoints' configuration and every failure path is driven. The canaries must appear nowhere a user or operator
 * can see: error messages, `cause` chains (walked and inspected), log lines, events, manifests and other staged
 * files, checkpoints and run state.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { HttpJsonSource } from '../../src/http/index.js';
import {
  type IngestionEvent,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type RunUnitOptions,
  runUnit,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';
import { recordFigures } from './harness.js';

const env = usePostgres('rel_secrets');
const tmp = mkdtempSync(join(tmpdir(), 'nucleus-secrets-'));
const canary = (what: string) => `CANARY${what}${randomBytes(9).toString('hex')}`;
const PG_PASSWORD = canary('pg');
const AWS_SECRET = canary('aws');
const HTTP_TOKEN = canary('http');
const CANARIES = [PG_PASSWORD, AWS_SECRET, HTTP_TOKEN];
const figures = { failurePaths: [] as string[], placesSearched: 0, bytesSearched: 0, occurrences: 0 };
let server: Server;
let serverUrl = '';

beforeAll(async () => {
  // A hostile API: it echoes the request's Authorization header back in its error bodies.
  server = createServer((req, res) => {
    const echo = `denied for ${req.headers.authorization ?? '-'} (token=${(req.headers.authorization ?? '').replace(/^Bearer /, '')})`;
    if (req.url?.startsWith('/unauthorized')) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="${req.headers.authorization}"`,
      });
      res.end(JSON.stringify({ error: echo }));
    } else if (req.url?.startsWith('/broken')) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(echo);
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"data": {"items": [{"id": 1, "note": "${echo}"`); // truncated JSON that echoes the token
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.NUCLEUS_CANARY_TOKEN = HTTP_TOKEN;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
  recordFigures('secrets', figures);
});

/** Everything a failed run exposes, as text. */
async function exposure(
  opts: Omit<RunUnitOptions, 'kv' | 'logger' | 'onEvent'>,
  root: string,
): Promise<{ text: string; code: string }> {
  const kv = new MemoryKvStore();
  const lines: string[] = [];
  const events: IngestionEvent[] = [];
  const logger = {
    debug: (...a: unknown[]) => lines.push(inspect(a, { depth: 10 })),
    info: (...a: unknown[]) => lines.push(inspect(a, { depth: 10 })),
    warn: (...a: unknown[]) => lines.push(inspect(a, { depth: 10 })),
    error: (...a: unknown[]) => lines.push(inspect(a, { depth: 10 })),
  };
  const err = await runUnit({
    ...opts,
    kv,
    logger,
    onEvent: (e) => events.push(e),
    policy: { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } },
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the run must fail').toBeInstanceOf(Error);
  const parts: string[] = [];
  // The error and its whole cause chain: messages, stacks, details, and a deep inspection of every link.
  for (let e: unknown = err, depth = 0; e && depth < 20; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(
      String((e as Error).message),
      String((e as Error).stack),
      JSON.stringify(e),
      inspect(e, { depth: 10, showHidden: true }),
    );
  }
  parts.push(...lines, JSON.stringify(events));
  for await (const entry of kv.list({ namespace: 'ingestion', scopeId: 'default' })) parts.push(JSON.stringify(entry));
  // A run refused before it staged anything leaves no staging folder at all.
  for (const f of existsSync(root) ? readdirSync(root, { recursive: true, withFileTypes: true }) : []) {
    if (f.isFile()) parts.push(readFileSync(join(f.parentPath, f.name), 'latin1'));
  }
  figures.placesSearched += parts.length;
  const text = parts.join('\n');
  figures.bytesSearched += text.length;
  return { text, code: (err as { code?: string }).code ?? 'none' };
}

function expectNoCanary(name: string, text: string): void {
  for (const c of CANARIES) {
    const n = text.split(c).length - 1;
    figures.occurrences += n;
    expect(
      n,
      `${name}: canary ${c.slice(0, 10)}… found ${n}× in:\n${text.slice(Math.max(0, text.indexOf(c) - 300), text.indexOf(c) + 100)}`,
    ).toBe(0);
  }
  figures.failurePaths.push(name);
}

function staging(root: string) {
  return new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) });
}

const rows = Array.from({ length: 50 }, (_, i) => ({ id: i + 1 }));

describe('canary secrets never leak', () => {
  it('PostgreSQL source password: connection refused', async () => {
    const root = join(tmp, 'pg-source');
    const out = await exposure(
      {
        source: new PostgresSource({ connectionString: `postgres://canary:${PG_PASSWORD}@127.0.0.1:1/test` }),
        sink: new MemorySink(),
        staging: staging(root),
        unit: { endpointId: 'pg', unitId: 'public.t' },
        mode: 'full',
      },
      root,
    );
    expect(out.code).toBe('source_failed');
    expectNoCanary('PostgreSQL source, connection refused', out.text);
  }, 60_000);

  it('PostgreSQL sink password: a database that does not exist, and a refused port', async () => {
    for (const [name, url] of [
      [
        'no such database',
        `postgres://root:${PG_PASSWORD}@127.0.0.1:${new URL(env.url).port || 5432}/nodb_${randomBytes(4).toString('hex')}`,
      ],
      ['refused port', `postgres://root:${PG_PASSWORD}@127.0.0.1:1/test`],
      ['malformed port', `postgres://root:${PG_PASSWORD}@127.0.0.1:notaport/test`],
    ] as const) {
      const root = join(tmp, `pg-sink-${name.replaceAll(' ', '-')}`);
      let sink: PostgresSink | undefined;
      let out: { text: string; code: string };
      try {
        sink = new PostgresSink({ connectionString: url, schema: env.schema });
        out = await exposure(
          {
            source: new MemorySource({ units: { t: { rows } } }),
            sink,
            staging: staging(root),
            unit: { endpointId: 'pg', unitId: 't' },
            mode: 'full',
          },
          root,
        );
      } catch (e) {
        // Refused at construction: the error itself must be clean.
        out = {
          text: `${String((e as Error).message)}\n${inspect(e, { depth: 10 })}`,
          code: (e as { code?: string }).code ?? 'none',
        };
      } finally {
        await sink?.close();
      }
      expect(['sink_failed', 'config_invalid']).toContain(out.code);
      expectNoCanary(`PostgreSQL sink, ${name}`, out.text);
    }
  }, 60_000);

  it('AWS secret key: S3 staging refuses the credentials', async () => {
    const client = createTestS3Client({
      credentials: { accessKeyId: 'NUCLEUSUNKNOWNKEY', secretAccessKey: AWS_SECRET },
    });
    const out = await exposure(
      {
        source: new MemorySource({ units: { t: { rows } } }),
        sink: new MemorySink(),
        staging: new ObjectStoreStagingProvider({
          store: new S3ObjectStore({ client, bucket: testBucket(), retry: { maxAttempts: 1 } }),
          prefix: uniquePrefix('secrets').replace(/\/$/, ''),
        }),
        unit: { endpointId: 's3', unitId: 't' },
        mode: 'full',
      },
      join(tmp),
    );
    expect(out.code).toBe('staging_failed');
    expectNoCanary('S3 staging, refused credentials', out.text);
  }, 60_000);

  for (const [path, what] of [
    ['/unauthorized', '401 echoing the Authorization header'],
    ['/broken', '500 echoing the token'],
    ['/truncated', 'truncated JSON echoing the token'],
  ] as const) {
    it(`HTTP bearer token: ${what}`, async () => {
      const root = join(tmp, `http${path}`);
      const out = await exposure(
        {
          source: new HttpJsonSource({
            baseUrl: serverUrl,
            auth: { type: 'bearer', tokenEnv: 'NUCLEUS_CANARY_TOKEN' },
            units: { things: { path, recordsPath: 'data.items', pagination: { style: 'none' } } },
            retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
          }),
          sink: new MemorySink(),
          staging: staging(root),
          unit: { endpointId: 'http', unitId: 'things' },
          mode: 'full',
        },
        root,
      );
      expect(out.code).toBe('source_failed');
      expectNoCanary(`HTTP source, ${what}`, out.text);
    }, 60_000);
  }
});
