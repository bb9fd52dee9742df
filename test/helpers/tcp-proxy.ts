/**
 * A TCP proxy on loopback for putting in front of PostgreSQL (or any TCP server): it forwards bytes both ways and
 * can drop every open connection at once (`dropAll`), or drop a connection after it carried `dropAfterBytes`
 * bytes from the client (so a connection dies in the middle of a COPY stream).
 */
import net from 'node:net';

export interface TcpProxy {
  /** Host and port to connect to instead of the target. */
  readonly host: string;
  readonly port: number;
  readonly stats: { connections: number; dropped: number };
  /** Destroy every open connection (both sides). Returns how many were dropped. */
  dropAll(): number;
  /** Drop the next connection that carries more than `n` client bytes (once); `undefined` turns it off. */
  dropAfterBytes(n: number | undefined): void;
  close(): Promise<void>;
}

/** Start a TCP proxy on 127.0.0.1 (random port) to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ a: net.Socket; b: net.Socket }>();
  const stats = { connections: 0, dropped: 0 };
  let dropAfter: number | undefined;
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(target.port, target.host);
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    let sent = 0;
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (dropAfter !== undefined && sent > dropAfter) {
        dropAfter = undefined;
        stats.dropped++;
        end();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    stats,
    dropAll() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        p.a.destroy();
        p.b.destroy();
        pairs.delete(p);
      }
      stats.dropped += n;
      return n;
    },
    dropAfterBytes(n) {
      dropAfter = n;
    },
    async close() {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      pairs.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
