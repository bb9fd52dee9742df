/**
 * Network faults on PostgreSQL: the sink talks to PostgreSQL through a TCP proxy that drops connections, and
 * backends are killed with `pg_terminate_backend` during COPY and at COMMIT. No slice is ever partly visible, no
 * row is duplicated, and each run either completes or fails with a retryable IngestError and succeeds on retry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { IngestError, type IngestionEvent, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { addSourceRows, checkInvariants, createTables, recordFigures } from './harness.js';

const env = usePostgres('rel_netpg');
const root = mkdtempSync(join(tmpdir(), 'nucleus-netpg-'));
let proxy: TcpProxy;
let kv: PostgresKvStore;
let sinkPool: pg.Pool;
const figures = {
  scenarios: [] as string[],
  faultsInjected: 0,
  connectionsDropped: 0,
  backendsTerminated: 0,
  failedRunsRetryable: 0,
  failedRunsFatal: 0,
  uncaughtExceptions: 0,
  rowsChecked: 0,
  duplicatesFound: 0,
};

/** Errors that escaped as uncaught exceptions (an `error` event of a checked-out pg client nobody listens to). */
const uncaught: string[] = [];
const onUncaught = (err: unknown) => {
  uncaught.push(String((err as Error)?.stack ?? err));
};

/** What the sink's pool does to the next matching query. */
let onQuery:
  | ((client: pg.PoolClient & { processID?: number }, text: string, send: () => unknown) => unknown)
  | undefined;

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  await createTables(env.pool, env.schema, 'append');
  await addSourceRows(env.pool, env.schema, 6000);
  kv = new PostgresKvStore({ db: env.newKysely(), schema: env.schema });
  await kv.migrate();
  const url = new URL(env.url);
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  const proxied = new URL(env.url);
  proxied.hostname = proxy.host;
  proxied.port = String(proxy.port);
  sinkPool = env.newPool({ connectionString: proxied.toString(), max: 2 });
});
afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  await proxy?.close();
  rmSync(root, { recursive: true, force: true });
  recordFigures('network-faults-pg', figures);
});

/** The sink's pool, with a hook on every query of its clients (the plain pool when no hook is armed). */
function hookedPool(): pg.Pool {
  if (!onQuery) return sinkPool;
  return new Proxy(sinkPool, {
    get(t, p) {
      if (p === 'connect') {
        return async () => {
          const client = await t.connect();
          return new Proxy(client, {
            get(c, q) {
              if (q !== 'query') {
                const v = Reflect.get(c, q, c);
                return typeof v === 'function' ? v.bind(c) : v;
              }
              return (...args: unknown[]) => {
                const send = () => (c.query as (...a: unknown[]) => unknown)(...args);
                const a0 = args[0] as string | { text?: string };
                const text = typeof a0 === 'string' ? a0 : (a0?.text ?? '');
                const hook = onQuery;
                return hook ? hook(c as never, text, send) : send();
              };
            },
          });
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

async function terminate(pid: number | undefined): Promise<void> {
  if (!pid) throw new Error('no backend pid');
  const { rows } = await env.pool.query('SELECT pg_terminate_backend($1) AS ok', [pid]);
  if (rows[0]?.ok) figures.backendsTerminated++;
}

async function runOnce(onEvent?: (e: IngestionEvent) => void) {
  const unitId = `${env.schema}.src`;
  return runUnit({
    source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['seq'] } } }),
    sink: new PostgresSink({ pool: hookedPool(), schema: env.schema, tables: { [unitId]: `${env.schema}.dst` } }),
    // CODEC=pg-copy: the pass-through variant (network-faults-pg-pass-through.test.ts)
    staging: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root }),
      ...(process.env.CODEC === 'pg-copy' ? { codec: pgCopyCodec() } : {}),
    }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'crash-src', unitId, sinkId: 'crash-dst' },
    mode: 'incremental',
    disposition: 'append',
    policy: {
      sliceMaxRows: 2000,
      chunkSize: 500,
      keepStaging: true,
      leaseTtlMs: 5000,
      retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 100 },
    },
    ...(onEvent ? { onEvent } : {}),
  });
}

/** Run with a fault, then (if it failed retryably) again without, until committed; check the invariants. */
async function scenario(name: string, arm: () => (e: IngestionEvent) => void): Promise<void> {
  await addSourceRows(env.pool, env.schema, 3000);
  const firedBefore = proxy.stats.dropped + figures.backendsTerminated;
  let committed = false;
  try {
    await runOnce(arm());
    committed = true;
  } catch (err) {
    expect(IngestError.is(err), `${name}: ${String(err)}`).toBe(true);
    expect(
      (err as IngestError).retryable,
      `${name}: a connection failure must be retryable: ${(err as IngestError).code} ${(err as Error).message}`,
    ).toBe(true);
    figures.failedRunsRetryable++;
  } finally {
    onQuery = undefined;
    proxy.dropAfterBytes(undefined);
  }
  // A dropped connection must come back as a failed query (handled above), not as an uncaught exception that
  // would take a host process (a Temporal worker, a server) down.
  await new Promise((r) => setTimeout(r, 200));
  const escaped = uncaught.splice(0);
  figures.uncaughtExceptions += escaped.length;
  expect(escaped, `${name}: errors escaped as uncaught exceptions`).toEqual([]);
  // the fault must have fired: a connection the proxy dropped, or a backend pg_terminate_backend ended
  expect(proxy.stats.dropped + figures.backendsTerminated, `${name}: the fault never fired`).toBeGreaterThan(
    firedBefore,
  );
  const mid = await checkInvariants(
    env.pool,
    env.schema,
    { store: new FileSystemObjectStore({ root }) },
    { complete: committed, label: `${name} (first run)` },
  );
  figures.rowsChecked += mid.targetRows;
  for (let i = 0; i < 5 && !committed; i++) {
    try {
      await runOnce();
      committed = true;
    } catch (err) {
      if (!IngestError.is(err) || !err.retryable) throw err;
    }
  }
  expect(committed, `${name}: a retry must succeed`).toBe(true);
  const r = await checkInvariants(
    env.pool,
    env.schema,
    { store: new FileSystemObjectStore({ root }) },
    { complete: true, label: name },
  );
  figures.rowsChecked += r.targetRows;
  figures.duplicatesFound += r.targetRows - r.distinct;
  figures.scenarios.push(name);
}

describe('PostgreSQL sink under connection faults', () => {
  it('the proxy drops every sink connection in the middle of the import', async () => {
    await scenario('proxy drops all connections mid-import', () => {
      let fired = false;
      return (e) => {
        if (!fired && e.type === 'import.progress' && e.rowsImported > 0) {
          fired = true;
          figures.faultsInjected++;
          figures.connectionsDropped += proxy.dropAll();
        }
      };
    });
  }, 120_000);

  it('the proxy drops the connection that carries a COPY stream after 100 kB', async () => {
    await scenario('proxy drops the COPY connection after 100 kB', () => {
      proxy.dropAfterBytes(100_000);
      figures.faultsInjected++;
      return () => {};
    });
  }, 120_000);

  it('pg_terminate_backend during COPY', async () => {
    await scenario('pg_terminate_backend during COPY', () => {
      let fired = false;
      onQuery = (c, text, send) => {
        const out = send();
        if (!fired && text.startsWith('COPY')) {
          fired = true;
          figures.faultsInjected++;
          setTimeout(() => void terminate(c.processID).catch(() => {}), 30);
        }
        return out;
      };
      return () => {};
    });
  }, 120_000);

  it('pg_terminate_backend just before COMMIT (the slice transaction is lost)', async () => {
    await scenario('pg_terminate_backend before COMMIT', () => {
      let fired = false;
      onQuery = (c, text, send) => {
        if (fired || text !== 'COMMIT') return send();
        fired = true;
        figures.faultsInjected++;
        return terminate(c.processID).then(send);
      };
      return () => {};
    });
  }, 120_000);

  it('pg_terminate_backend racing COMMIT (the client cannot know whether it committed)', async () => {
    await scenario('pg_terminate_backend racing COMMIT', () => {
      let n = 0;
      onQuery = (c, text, send) => {
        if (text !== 'COMMIT' || ++n !== 2) return send();
        figures.faultsInjected++;
        const out = send();
        void terminate(c.processID).catch(() => {});
        return out;
      };
      return () => {};
    });
  }, 120_000);
});
