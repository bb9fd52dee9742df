/**
 * `npm run bench -- cdc [--changes N] [--url postgres://…] [--no-write]` (default 200,000 changes; `SMALL=1`: 5,000):
 * change data capture end to end — a writer's inserts, updates and deletes → the unit's slot → durable filesystem
 * staging → PostgreSQL target (merge: the changes applied) — against `pg_recvlogical` draining the same volume with
 * pgoutput from a slot of its own to /dev/null, in one run.
 *
 * Both slots exist before the writer starts; the writer commits the changes (transactions of 10); then each consumer
 * drains to the same end position, timed alone: ours as `runUnit` calls until one finds nothing new (each run's
 * `maxRows` is 50,000), `pg_recvlogical --endpos`. Reported: changes/s of each, the ratio, our slot's lag at the end,
 * and the target compared with the source as text both ways. A private cluster with `wal_level = logical` is started
 * unless `--url` names a server that has it. Writes docs/performance.md (section `cdc`) unless `--no-write`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { FileSystemObjectStore } from '../src/fs/index.js';
import { MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../src/index.js';
import { PostgresCdcSource, PostgresSink } from '../src/postgres/index.js';
import { binDir, startLogicalCluster } from '../test/helpers/pg-logical-cluster.js';
import { writePerformanceSection } from './_report.js';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function main(args: string[]): Promise<void> {
  const changes = Number(arg(args, '--changes') ?? (process.env.SMALL === '1' ? 5_000 : 200_000));
  const given = arg(args, '--url');
  const cluster = given ? undefined : await startLogicalCluster();
  const url = given ?? cluster!.url;
  const db = new pg.Pool({ connectionString: url, max: 2 });
  const staging = mkdtempSync(join(tmpdir(), 'nucleus-bench-cdc-'));
  try {
    await db.query('DROP SCHEMA IF EXISTS bench_cdc CASCADE; DROP SCHEMA IF EXISTS bench_cdc_tgt CASCADE');
    for (const s of ['nucleus_b_t', 'bench_recv']) {
      await db
        .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1', [
          `${s}%`,
        ])
        .catch(() => {});
    }
    await db.query('DROP PUBLICATION IF EXISTS pub_bench_cdc');
    await db.query('CREATE SCHEMA bench_cdc');
    await db.query(
      'CREATE TABLE bench_cdc.t (id bigint PRIMARY KEY, name text NOT NULL, qty integer, amount numeric(12,2), at timestamptz)',
    );
    await db.query('CREATE PUBLICATION pub_bench_cdc FOR TABLE bench_cdc.t');
    await db.query(
      "INSERT INTO bench_cdc.t SELECT g, 'seed' || g, g % 100, g * 0.25, now() FROM generate_series(1, 1000) g",
    );

    const source = new PostgresCdcSource({
      connectionString: url,
      publication: 'pub_bench_cdc',
      slot: 'nucleus_b',
      units: ['bench_cdc.t'],
      maxRows: 50_000,
      maxWaitMs: 60_000,
    });
    const sink = new PostgresSink({ connectionString: url, schema: 'bench_cdc_tgt' });
    const kv = new MemoryKvStore();
    const stagingProvider = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: staging }) });
    const run = () =>
      runUnit({
        source,
        sink,
        staging: stagingProvider,
        kv,
        unit: { vendor: 'postgres', endpointId: 'bench-cdc', unitId: 'bench_cdc.t' },
        disposition: 'merge',
        policy: { sliceMaxRows: 25_000 },
      });
    await run(); // snapshot: creates our slot
    const bin = binDir();
    const recv = bin ? join(bin, 'pg_recvlogical') : 'pg_recvlogical';
    execFileSync(recv, ['-d', url, '-S', 'bench_recv', '--create-slot', '-P', 'pgoutput']);

    // the writer: inserts, updates, deletes in transactions of 10
    const w0 = Date.now();
    const c = await db.connect();
    let next = 1001;
    for (let done = 0; done < changes; ) {
      await c.query('BEGIN');
      for (let i = 0; i < 10 && done < changes; i++, done++) {
        const r = done % 10;
        if (r < 6) {
          await c.query("INSERT INTO bench_cdc.t VALUES ($1::bigint, 'n' || $1::bigint, 1, 2.5, now())", [next++]);
        } else if (r < 9) {
          await c.query('UPDATE bench_cdc.t SET qty = qty + 1, at = now() WHERE id = $1', [next - 1 - (done % 50)]);
        } else {
          await c.query('DELETE FROM bench_cdc.t WHERE id = $1', [next - 3]);
        }
      }
      await c.query('COMMIT');
    }
    c.release();
    const writeMs = Date.now() - w0;
    const end = (await db.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l as string;

    // pg_recvlogical: the same changes from its own slot to /dev/null
    const r0 = process.hrtime.bigint();
    execFileSync(recv, [
      '-d',
      url,
      '-S',
      'bench_recv',
      '--start',
      '--endpos',
      end,
      '-o',
      'proto_version=1',
      '-o',
      'publication_names=pub_bench_cdc',
      '-f',
      '/dev/null',
      '--no-loop',
    ]);
    const recvMs = Number(process.hrtime.bigint() - r0) / 1e6;

    // ours: runs until one finds nothing new
    const o0 = process.hrtime.bigint();
    let runs = 0;
    let rows = 0;
    for (;;) {
      const r = await run();
      runs++;
      rows += r.stats.rowsExported;
      if (r.stats.rowsExported === 0) break;
    }
    const oursMs = Number(process.hrtime.bigint() - o0) / 1e6;
    const [status] = await source.status();
    const diff = async (a: string, b: string) =>
      Number(
        (
          await db.query(
            `SELECT count(*)::int AS n FROM (SELECT (x.*)::text FROM ${a} x EXCEPT ALL SELECT (y.*)::text FROM ${b} y) d`,
          )
        ).rows[0].n,
      );
    const missing = await diff('bench_cdc.t', 'bench_cdc_tgt.t');
    const extra = await diff('bench_cdc_tgt.t', 'bench_cdc.t');
    await source.close();
    await sink.close();

    // the row changes the statements made (an update or delete of a missing id changes nothing): what both consumers read
    const rate = (ms: number) => Math.round((rows / ms) * 1000);
    const lines = [
      `${rows.toLocaleString('en-US')} row changes from ${changes.toLocaleString('en-US')} statements (60% inserts, 30% updates, 10% deletes; transactions of 10), ${cpus().length} cores, ${new Date().toISOString().slice(0, 10)}:`,
      '',
      '| consumer | time | changes/s |',
      '| --- | --- | --- |',
      `| ours: slot → filesystem staging → PostgreSQL (merge), ${runs} runs | ${(oursMs / 1000).toFixed(2)} s | ${rate(oursMs).toLocaleString('en-US')} |`,
      `| pg_recvlogical (pgoutput) → /dev/null | ${(recvMs / 1000).toFixed(2)} s | ${rate(recvMs).toLocaleString('en-US')} |`,
      '',
      `Ratio (pg_recvlogical time / ours): ${(recvMs / oursMs).toFixed(2)}. Writer: ${(writeMs / 1000).toFixed(2)} s. ` +
        `Our slot's lag at the end: ${status.lagBytes ?? '-'} bytes (retained ${status.retainedBytes ?? '-'}). ` +
        `Target vs source as text: ${missing} missing, ${extra} extra.`,
    ];
    const md = lines.join('\n');
    console.log(md);
    if (missing || extra) throw new Error('the target differs from the source');
    if (!args.includes('--no-write')) writePerformanceSection('cdc', md);
  } finally {
    await db.end().catch(() => {});
    await cluster?.stop();
    rmSync(staging, { recursive: true, force: true });
  }
}
