/**
 * JetStream → PostgreSQL, exactly once under SIGKILL. While the test publishes numbered messages to a stream, worker
 * processes run the unit and kill themselves at every step in turn — a slice staged, the session sealed, the sink
 * committed (checkpoint not moved), the checkpoint moved (run state, `_LANDED` and `confirm()` not yet), inside
 * `confirm()` — and after each round SQL checks: no message twice in the target, and every message up to the
 * checkpoint there. At the end every published message is in the target exactly once.
 *
 * Default: 3,000 messages, two kills per step. `SOAK=1`: 100,000 messages, six kills per step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointKey } from '../../src/index.js';
import { useNats } from '../helpers/nats.js';
import { usePostgres } from '../helpers/pg.js';
import {
  EXIT,
  explain,
  killLeftovers,
  prepareWorker,
  recordFigures,
  runUntilCommitted,
  SOAK,
  sleep,
  spawnWorker,
  type WorkerOutcome,
} from './harness.js';

const WORKER = resolve(__dirname, 'workers/nats-crash-worker.ts');
const POINTS = ['slice-staged', 'sealed', 'sink-returned', 'checkpoint-put', 'confirm'] as const;
const TOTAL = SOAK ? 100_000 : 3_000;
const CYCLES = SOAK ? 6 : 2;
const BURST = SOAK ? 1_000 : 50;
const BURST_EVERY_MS = SOAK ? 150 : 300;

const pg = usePostgres('natscrash');
const nats = useNats();
const fsRoot = mkdtempSync(join(tmpdir(), 'nucleus-nats-crash-'));
let stream: string;
let env: Record<string, string>;
const cpKey = checkpointKey({ vendor: 'nats', endpointId: 'nats-crash', unitId: 'ev', sinkId: 'pg' }).key;

beforeAll(async () => {
  await prepareWorker(WORKER);
  stream = await nats.stream('crash');
  await pg.query(
    `CREATE TABLE "${pg.schema}".ev (n bigint NOT NULL, subject text, stream_seq bigint NOT NULL, "timestamp" timestamptz, headers jsonb)`,
  );
  env = {
    DATABASE_URL: pg.url,
    PG_SCHEMA: pg.schema,
    STREAM: stream,
    FS_ROOT: fsRoot,
    MAX_MESSAGES: String(SOAK ? 20_000 : 1_000),
    SLICE_MAX_ROWS: String(SOAK ? 5_000 : 300),
    LEASE_TTL_MS: '2000',
  };
});

afterAll(() => {
  killLeftovers();
  rmSync(fsRoot, { recursive: true, force: true });
});

/** Publish TOTAL messages `{ n }` in bursts; resolves when the last one is acknowledged by the stream. */
async function publishAll(): Promise<void> {
  for (let n = 0; n < TOTAL; n += BURST) {
    const acks = [];
    for (let i = n; i < Math.min(TOTAL, n + BURST); i++)
      acks.push(nats.js.publish(`${stream}.ev`, JSON.stringify({ n: i })));
    await Promise.all(acks);
    await sleep(BURST_EVERY_MS);
  }
}

type Query = (text: string, values?: unknown[]) => Promise<{ rows: any[] }>;

async function checkpointSeq(q: Query): Promise<number | null> {
  const has = (await q(`SELECT to_regclass($1) AS r`, [`"${pg.schema}".kv_entries`])).rows[0].r;
  if (!has) return null;
  const row = (await q(`SELECT value FROM "${pg.schema}".kv_entries WHERE key = $1`, [cpKey])).rows[0];
  return row ? Number(row.value.seq) : null;
}

const tally = { invariantChecks: 0, rowsChecked: 0 };

/** The delivery invariants, in SQL. */
async function check(label: string): Promise<{ rows: number; checkpoint: number | null }> {
  // One snapshot for every read: the server finishes a statement a SIGKILLed worker had already sent (a slice's
  // COMMIT lands after the kill), so reads taken one by one could see a ledger row and not its rows.
  const client = await pg.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return await checkInSnapshot(label, (text, values) => client.query(text, values));
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

async function checkInSnapshot(label: string, q: Query): Promise<{ rows: number; checkpoint: number | null }> {
  const s = `"${pg.schema}"`;
  const t = (
    await q(
      `SELECT count(*)::int AS n, count(DISTINCT stream_seq)::int AS d, count(DISTINCT n)::int AS dn FROM ${s}.ev`,
    )
  ).rows[0];
  expect(t.n, `${label}: a message twice in the target`).toBe(t.d);
  expect(t.dn, `${label}: a payload twice in the target`).toBe(t.n);
  const cp = await checkpointSeq(q);
  if (cp !== null) {
    const upTo = (await q(`SELECT count(DISTINCT stream_seq)::int AS n FROM ${s}.ev WHERE stream_seq <= $1`, [cp]))
      .rows[0].n;
    expect(upTo, `${label}: the checkpoint (${cp}) passed messages that are not in the target`).toBe(cp);
  }
  const hasLedger = (await q(`SELECT to_regclass($1) AS r`, [`${s}._nucleus_ingest_ledger`])).rows[0].r;
  if (hasLedger) {
    const ledger = (await q(`SELECT coalesce(sum(rows), 0)::int AS n FROM ${s}._nucleus_ingest_ledger`)).rows[0].n;
    expect(ledger, `${label}: the ledger accounts for ${ledger} rows, the target holds ${t.n}`).toBe(t.n);
  }
  tally.invariantChecks++;
  tally.rowsChecked += t.n;
  return { rows: t.n, checkpoint: cp };
}

/** One worker asked to die at `point`; a lease still held by the previous (killed) worker is waited out. */
async function crashRound(point: string): Promise<WorkerOutcome> {
  for (let i = 0; i < 40; i++) {
    const o = await spawnWorker({ ...env, CRASH_AT: point }, { script: WORKER }).done;
    if (o.code === EXIT.leaseHeld) {
      await sleep(300);
      continue;
    }
    if (!o.crashed && o.code !== EXIT.ok && o.code !== EXIT.retryable && o.code !== EXIT.leaseLost)
      throw new Error(`worker failed for good: ${explain(o)}`);
    return o;
  }
  throw new Error(`the lease was never free for a round at ${point}`);
}

describe(`JetStream → PostgreSQL under SIGKILL (${TOTAL} messages)`, () => {
  it(
    'holds each message exactly once, checked in SQL after every kill and at the end',
    async () => {
      const started = Date.now();
      const publishing = publishAll();
      const kills: Record<string, number> = {};
      const crashRounds: Array<{ point: string; crashed: boolean }> = [];
      for (let c = 0; c < CYCLES; c++) {
        for (const point of POINTS) {
          const o = await crashRound(point);
          crashRounds.push({ point, crashed: o.crashed });
          if (o.crashed) kills[point] = (kills[point] ?? 0) + 1;
          await check(`after a round at ${point} (cycle ${c + 1})`);
        }
      }
      await publishing;
      let last = await check('after publishing');
      let rounds = 0;
      let recoveryRuns = 0;
      while (last.checkpoint !== TOTAL && rounds++ < 400) {
        recoveryRuns += (await runUntilCommitted({ ...env }, { script: WORKER })).length;
        last = await check(`recovery round ${rounds}`);
      }
      const final = (
        await pg.query(
          `SELECT count(*)::int AS n, count(DISTINCT n)::int AS d, min(n)::int AS lo, max(n)::int AS hi FROM "${pg.schema}".ev`,
        )
      ).rows[0];
      expect(final).toEqual({ n: TOTAL, d: TOTAL, lo: 0, hi: TOTAL - 1 });
      // every step was killed at least once
      for (const p of POINTS) expect(kills[p] ?? 0, `no kill at ${p}`).toBeGreaterThan(0);
      // the fields update-guarantees.ts sums over every crash-* suite
      recordFigures('crash-nats', {
        messages: TOTAL,
        kills: Object.values(kills).reduce((a, b) => a + b, 0),
        killsByPoint: kills,
        rounds: crashRounds,
        recoveryRuns,
        ...tally,
        duplicatesFound: 0,
        missingRows: 0,
        ms: Date.now() - started,
      });
    },
    SOAK ? 3_600_000 : 240_000,
  );
});
