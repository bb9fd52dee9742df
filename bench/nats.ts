/**
 * `npm run bench -- nats [--messages N] [--no-write]` (default 100,000 messages): NATS JetStream → PostgreSQL, messages
 * per second end to end, against a hand-written consume → `COPY` loop on the same messages, in one run.
 *
 * N JSON messages `{ id, name, amount, at }` are published to a fresh stream on the machine's server (NATS_URL,
 * default 127.0.0.1:4222). Then, alternating which goes first over two rounds:
 * - ours: one `runUnit` of `JetStreamSource` (one unit, the whole stream, `maxMessages` N) → durable filesystem
 *   staging (NDJSON) → `PostgresSink` into a fresh table, with the checkpoint in a `PostgresKvStore`;
 * - baseline: an ordered consumer's `consume()` over the same stream, each message `JSON.parse`d into a tab-separated
 *   line (id, name, amount, at, subject, stream_seq) and streamed into one `COPY … FROM STDIN` (pg-copy-streams) —
 *   no staging, no checkpoint, no ledger, no exactly-once.
 * Both targets are checked to hold the N messages once (count, distinct stream_seq). The best round of each is kept;
 * the ratio is ours / baseline in messages per second. Writes docs/performance.md (section `nats`) unless
 * `--no-write`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { writePerformanceSection } from './_report.js';

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
const NATS_URL = process.env.NATS_URL ?? '127.0.0.1:4222';

/** Entry point of `npm run bench -- nats [--messages N] [--no-write]`. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--messages');
  const total = i >= 0 ? Number(args[i + 1]) : 100_000;
  if (!Number.isSafeInteger(total) || total <= 0)
    throw new Error(`Expected \`--messages\` to be a positive integer, got ${args[i + 1]}`);
  const write = !args.includes('--no-write');

  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `bench_${randomBytes(4).toString('hex')}`;
  const schema = `bench_nats_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const stagingRoot = mkdtempSync(join(tmpdir(), 'nucleus-bench-nats-'));
  try {
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const t0 = Date.now();
    for (let n = 0; n < total; n += 1000) {
      const acks = [];
      for (let k = n; k < Math.min(total, n + 1000); k++) {
        const at = new Date(Date.UTC(2024, 0, 1) + k * 1000).toISOString();
        acks.push(
          js.publish(
            `${stream}.orders`,
            JSON.stringify({ id: k + 1, name: `order-${k + 1}`, amount: (k % 10_000) / 100, at }),
          ),
        );
      }
      await Promise.all(acks);
    }
    console.log(`published ${total} messages in ${Date.now() - t0} ms`);

    const results: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] };
    for (let round = 0; round < 2; round++) {
      const order = round % 2 === 0 ? (['baseline', 'ours'] as const) : (['ours', 'baseline'] as const);
      for (const which of order) {
        const table = `${which}_${round}`;
        const ms =
          which === 'ours'
            ? await ours(stream, schema, table, total, join(stagingRoot, table))
            : await baseline(nc, stream, schema, table, total);
        const check = (
          await admin.query(
            `SELECT count(*)::int AS n, count(DISTINCT stream_seq)::int AS d FROM "${schema}"."${table}"`,
          )
        ).rows[0];
        if (check.n !== total || check.d !== total)
          throw new Error(`${which} round ${round}: ${check.n} rows, ${check.d} distinct, expected ${total}`);
        results[which].push(ms);
        console.log(`${which} round ${round + 1}: ${ms} ms, ${Math.round((total / ms) * 1000)} messages/s`);
      }
    }
    const best = (xs: number[]) => Math.min(...xs);
    const rate = (ms: number) => Math.round((total / ms) * 1000);
    const oursRate = rate(best(results.ours));
    const baseRate = rate(best(results.baseline));
    const ratio = (oursRate / baseRate).toFixed(2);
    console.log(`ours ${oursRate} messages/s, baseline ${baseRate} messages/s, ours/baseline ${ratio}`);
    if (write) {
      writePerformanceSection(
        'nats',
        `## NATS JetStream → PostgreSQL (\`npm run bench -- nats\`)

${total.toLocaleString('en-US')} JSON messages, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}, ${new Date().toISOString().slice(0, 10)}; best of two rounds, alternating order.

| path | messages/s |
| --- | ---: |
| \`runUnit\`: JetStreamSource → filesystem staging (NDJSON) → PostgresSink, exactly once | ${oursRate.toLocaleString('en-US')} |
| hand-written ordered consumer → one \`COPY FROM STDIN\`, no staging, no checkpoint | ${baseRate.toLocaleString('en-US')} |
| ratio | ${ratio} |
`,
      );
    }
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end();
    await nc.close();
    rmSync(stagingRoot, { recursive: true, force: true });
  }
}

/** One `runUnit` of the whole stream; milliseconds. */
async function ours(stream: string, schema: string, table: string, total: number, root: string): Promise<number> {
  const { runUnit, ObjectStoreStagingProvider } = await import('../src/index.js');
  const { FileSystemObjectStore } = await import('../src/fs/index.js');
  const { JetStreamSource } = await import('../src/nats/index.js');
  const { PostgresKvStore, PostgresSink } = await import('../src/postgres/index.js');
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  const db = new Kysely<any>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: DATABASE_URL, max: 2 }) }),
  });
  const kv = new PostgresKvStore({ db, schema });
  await kv.migrate();
  const source = new JetStreamSource({
    servers: NATS_URL,
    stream,
    units: { [table]: {} },
    maxMessages: total,
    maxReadMs: 3_600_000,
    maxBytes: 2 ** 40,
  });
  const sink = new PostgresSink({ pool, schema });
  const start = Date.now();
  try {
    const r = await runUnit({
      source,
      sink,
      kv,
      staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
      unit: { vendor: 'nats', endpointId: 'bench', unitId: table },
      policy: { sliceMaxRows: 50_000 },
    });
    if (r.stats.rowsImported !== total) throw new Error(`ours imported ${r.stats.rowsImported} of ${total}`);
    return Date.now() - start;
  } finally {
    await source.close();
    await sink.close();
    await db.destroy();
    await pool.end();
  }
}

/** An ordered consumer → COPY text → one `COPY FROM STDIN`; milliseconds. */
async function baseline(
  nc: Awaited<ReturnType<typeof connect>>,
  stream: string,
  schema: string,
  table: string,
  total: number,
): Promise<number> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const start = Date.now();
  try {
    await client.query(
      `CREATE TABLE "${schema}"."${table}" (id bigint, name text, amount double precision, at text, subject text, stream_seq bigint)`,
    );
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.consume({ max_messages: 1000 });
    const esc = (s: string) =>
      s.replace(/[\\\t\n\r]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'));
    async function* lines(): AsyncGenerator<string> {
      let n = 0;
      let buf = '';
      for await (const m of messages) {
        const o = m.json<{ id: number; name: string; amount: number; at: string }>();
        buf += `${o.id}\t${esc(o.name)}\t${o.amount}\t${o.at}\t${esc(m.subject)}\t${m.seq}\n`;
        if (++n % 1000 === 0) {
          yield buf;
          buf = '';
        }
        if (n === total) break;
      }
      if (buf) yield buf;
    }
    await pipeline(lines(), client.query(copyFrom(`COPY "${schema}"."${table}" FROM STDIN`)));
    await messages.close();
    return Date.now() - start;
  } finally {
    await client.end();
  }
}
