import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IngestionContext, IngestionEvent } from '../../src/index.js';
import { noopLogger } from '../../src/index.js';

/** A request the test server saw. */
export interface SeenRequest {
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
}

/** A real node:http server on loopback whose handler each test sets. */
export interface TestServer {
  url: string;
  requests: SeenRequest[];
  handle(fn: (req: SeenRequest, res: ServerResponse) => void | Promise<void>): void;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  let handler: (req: SeenRequest, res: ServerResponse) => void | Promise<void> = (_r, res) => {
    res.statusCode = 404;
    res.end();
  };
  const requests: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const seen: SeenRequest = { path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers };
    requests.push(seen);
    Promise.resolve(handler(seen, res)).catch((err) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(fn) {
      handler = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(res: ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A context for calling an endpoint directly; events land in `events`. */
export function testContext(
  unitId: string,
  opts: { signal?: AbortSignal; events?: IngestionEvent[] } = {},
): IngestionContext {
  return {
    workspaceId: 'default',
    endpointId: 'api',
    unitId,
    runId: 'run-1',
    vendor: 'http',
    signal: opts.signal ?? new AbortController().signal,
    logger: noopLogger,
    emit: (e) => opts.events?.push(e),
  };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
