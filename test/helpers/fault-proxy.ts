/**
 * A fault-injecting HTTP proxy on loopback, for putting in front of an S3 server. A share of the requests
 * (`rate`, default 10%) starts a burst of `burst` (default 3) consecutive faulty requests; bursts take turns among:
 * `500` (S3 `InternalError`), `503` (S3 `SlowDown`), `reset` (the connection is destroyed after part of the
 * request arrived), `stall` (no answer for `stallMs`, then the connection is destroyed), and two opt-in kinds
 * that reach the server: `cut` (the request is served, the answer is cut off in the middle of its body) and
 * `lost` (the request is served, the answer never arrives: the server did the work, the client cannot know).
 * Every other request is forwarded unchanged (headers included, so SigV4 signatures stay valid). A seeded
 * generator makes runs repeatable.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultKind = '500' | '503' | 'reset' | 'stall' | 'cut' | 'lost';

/** Every fault kind, in the order bursts take turns. */
export const ALL_FAULT_KINDS: FaultKind[] = ['500', '503', 'reset', 'stall', 'cut', 'lost'];

export interface FaultProxyOptions {
  /** Where requests go, e.g. `http://127.0.0.1:4569`. */
  target: string;
  /** Probability that a request starts a burst of faults. @defaultValue 0.1 */
  rate?: number;
  /** Faulty requests per burst. @defaultValue 3 */
  burst?: number;
  /** Fault kinds to draw from. @defaultValue `['500', '503', 'reset', 'stall']` */
  kinds?: FaultKind[];
  /** How long a stalled request hangs before its connection is dropped. @defaultValue 1500 */
  stallMs?: number;
  /** Seed of the generator. @defaultValue 1 */
  seed?: number;
  /** Only requests for which this returns true may be faulted (default: all). */
  filter?: (req: http.IncomingMessage) => boolean;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly stats: {
    requests: number;
    forwarded: number;
    faults: Record<FaultKind, number>;
    cutAtBytes: number;
    ranged: number;
  };
  /**
   * Multipart uploads seen through the proxy: created (`POST ?uploads` answered with an UploadId), completed
   * (`POST ?uploadId=` answered 2xx) and aborted (`DELETE ?uploadId=` sent by the client, whatever the answer).
   */
  readonly multipart: { created: Set<string>; completed: Set<string>; aborted: Set<string> };
  /** Uploads created but neither completed nor aborted. */
  incompleteUploads(): string[];
  /** The fault kinds this proxy was given that never fired: a test asserts it is empty. */
  unfiredKinds(): FaultKind[];
  /** Stop injecting (requests still flow through). */
  setEnabled(on: boolean): void;
  close(): Promise<void>;
}

/** A small seeded generator (mulberry32): the same seed gives the same faults, or the same random kills. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function s3Error(code: string, message: string, resource: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>${resource.replace(/[<&>]/g, '')}</Resource><RequestId>FAULTPROXY</RequestId></Error>`;
}

/** Start a fault proxy on 127.0.0.1 (random port). */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target);
  const rate = opts.rate ?? 0.1;
  const burst = opts.burst ?? 3;
  const kinds = opts.kinds ?? ['500', '503', 'reset', 'stall'];
  const stallMs = opts.stallMs ?? 1500;
  const rnd = seededRandom(opts.seed ?? 1);
  const stats = {
    requests: 0,
    forwarded: 0,
    faults: { '500': 0, '503': 0, reset: 0, stall: 0, cut: 0, lost: 0 } as Record<FaultKind, number>,
    /** Bytes of answers delivered before a `cut`, summed. */
    cutAtBytes: 0,
    /** Requests that asked for a byte range (`Range:`), e.g. a GET resuming where a cut left it. */
    ranged: 0,
  };
  const multipart = { created: new Set<string>(), completed: new Set<string>(), aborted: new Set<string>() };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let left = 0;
  let bursts = 0;
  let kind: FaultKind = '500';
  let enabled = true;

  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    stats.requests++;
    if (req.headers.range) stats.ranged++;
    let fault: FaultKind | undefined;
    if (enabled && (!opts.filter || opts.filter(req))) {
      if (left === 0 && rnd() < rate) {
        left = burst;
        // Kinds take turns, so every kind shows up once a run has had as many bursts as there are kinds.
        kind = kinds[bursts++ % kinds.length];
      }
      if (left > 0) {
        left--;
        fault = kind;
      }
    }
    if (fault) {
      stats.faults[fault]++;
      const resource = req.url ?? '/';
      if (fault === '500' || fault === '503') {
        req.resume();
        req.on('end', () => {
          const body =
            fault === '500'
              ? s3Error('InternalError', 'We encountered an internal error. Please try again.', resource)
              : s3Error('SlowDown', 'Please reduce your request rate.', resource);
          res.writeHead(Number(fault), {
            'content-type': 'application/xml',
            'content-length': Buffer.byteLength(body),
            ...(fault === '503' ? { 'retry-after': '0' } : {}),
          });
          res.end(body);
        });
        return;
      }
      if (fault === 'reset') {
        // Let part of the request in, then drop the connection.
        let got = 0;
        const drop = () => req.socket.destroy();
        req.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 1024) drop();
        });
        req.on('end', drop);
        const t = setTimeout(drop, 20);
        timers.add(t);
        return;
      }
      if (fault === 'stall') {
        req.resume();
        const t = setTimeout(() => req.socket.destroy(), stallMs);
        timers.add(t);
        return;
      }
    }
    forward(req, res, fault === 'cut' || fault === 'lost' ? fault : undefined);
  });

  /** Send `req` on to the target and its answer back — all of it, half of its body (`cut`) or none (`lost`). */
  function forward(req: http.IncomingMessage, res: http.ServerResponse, damage?: 'cut' | 'lost'): void {
    stats.forwarded++;
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const uploadId = query.get('uploadId');
    if (req.method === 'DELETE' && uploadId) multipart.aborted.add(uploadId);
    const creating = req.method === 'POST' && query.has('uploads');
    const up = http.request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        const ok = (upRes.statusCode ?? 500) < 300;
        if (req.method === 'POST' && uploadId && ok) multipart.completed.add(uploadId);
        if (creating && ok) {
          const chunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => chunks.push(c));
          upRes.on('end', () => {
            const id = /<UploadId>([^<]+)<\/UploadId>/.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
            if (id) multipart.created.add(id);
          });
        }
        if (damage === 'lost') {
          // The server did the work; the client hears nothing.
          upRes.resume();
          upRes.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders as unknown as http.OutgoingHttpHeaders);
        if (damage !== 'cut') {
          upRes.pipe(res);
          return;
        }
        // Deliver the first half of the body (at least one byte when there is one), then drop the connection.
        const length = Number(upRes.headers['content-length'] ?? 0);
        const keep = Math.max(1, Math.floor(length / 2));
        let sent = 0;
        upRes.on('data', (c: Buffer) => {
          if (sent >= keep) return;
          const piece = c.subarray(0, keep - sent);
          sent += piece.length;
          stats.cutAtBytes += piece.length;
          res.write(piece);
          if (sent >= keep) {
            upRes.destroy();
            // Let the bytes leave before the reset.
            setImmediate(() => req.socket.destroy());
          }
        });
        upRes.on('end', () => req.socket.destroy());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    multipart,
    incompleteUploads: () =>
      [...multipart.created].filter((id) => !multipart.completed.has(id) && !multipart.aborted.has(id)),
    unfiredKinds: () => kinds.filter((k) => stats.faults[k] === 0),
    setEnabled(on) {
      enabled = on;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * The seeds a fault test runs with: `FAULT_SEEDS=1,2,3` (or one `FAULT_SEED=7`) from the environment, else
 * `defaults`. Every failure message names its seed, so `FAULT_SEEDS=<seed>` replays it.
 */
export function faultSeeds(defaults: number[]): number[] {
  const raw = process.env.FAULT_SEEDS ?? process.env.FAULT_SEED;
  if (!raw) return defaults;
  const seeds = raw.split(',').map((s) => Number(s.trim()));
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new Error(`FAULT_SEEDS must be a comma-separated list of non-negative integers, got ${JSON.stringify(raw)}`);
  }
  return seeds;
}
