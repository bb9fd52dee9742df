/**
 * NATS JetStream test helpers: the machine's server (NATS_URL, default 127.0.0.1:4222), a uniquely named stream per
 * call (deleted in afterAll), and a publisher.
 */
import { randomBytes } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { afterAll } from 'vitest';

export const NATS_URL = process.env.NATS_URL ?? '127.0.0.1:4222';

export interface NatsTestEnv {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Create a stream `<prefix>_<random>` on subjects `<name>.>`; deleted in afterAll. */
  stream(prefix?: string, opts?: { retention?: 'limits' | 'workqueue' | 'interest' }): Promise<string>;
  /** Publish JSON payloads (objects are stringified; strings and bytes go as they are), awaiting each ack. */
  publish(subject: string, payloads: Array<unknown>, hdrs?: Record<string, string>): Promise<number[]>;
}

/** Open a connection in the first test that needs it; close it and delete the streams in afterAll. */
export function useNats(): NatsTestEnv {
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  const streams: string[] = [];
  afterAll(async () => {
    if (!nc) return;
    for (const s of streams) await jsm!.streams.delete(s).catch(() => {});
    await nc.close();
  });
  const ensure = async () => {
    if (!nc) {
      nc = await connect({ servers: NATS_URL });
      js = jetstream(nc);
      jsm = await jetstreamManager(nc);
    }
  };
  return {
    get nc() {
      return nc!;
    },
    get js() {
      return js!;
    },
    get jsm() {
      return jsm!;
    },
    async stream(prefix = 'nt', opts = {}) {
      await ensure();
      const name = `${prefix}_${randomBytes(6).toString('hex')}`;
      await jsm!.streams.add({ name, subjects: [`${name}.>`], retention: (opts.retention ?? 'limits') as never });
      streams.push(name);
      return name;
    },
    async publish(subject, payloads, hdrs) {
      await ensure();
      const seqs: number[] = [];
      let h: ReturnType<typeof natsHeaders> | undefined;
      if (hdrs) {
        h = natsHeaders();
        for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
      }
      for (const p of payloads) {
        const data = typeof p === 'string' || p instanceof Uint8Array ? p : JSON.stringify(p);
        const ack = await js!.publish(subject, data, h ? { headers: h } : undefined);
        seqs.push(ack.seq);
      }
      return seqs;
    },
  };
}
