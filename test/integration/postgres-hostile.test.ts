import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestError, type Logger, MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { formatTableName, PostgresSink, PostgresSource, parseTableName } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('hostile');

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

const CORPUS = [
  'we"ird',
  'back\\slash',
  'semi;colon',
  "it's",
  'ünïcødé 😀 名前',
  '\\.',
  '"; DROP TABLE canary; --',
  'a.b',
  '__proto__',
  'Mixed Case  Space',
  'x'.repeat(63),
  'é'.repeat(31) + 'x', // 63 bytes
];

describe('hostile identifiers', () => {
  it('tables and columns with hostile names round-trip, and nothing else runs', async () => {
    const src = env.schema;
    const dst = `${env.schema}_dst`;
    await env.query(`CREATE SCHEMA ${q(dst)}`);
    await env.query(`CREATE TABLE ${q(src)}.canary (id int)`);
    await env.query(`CREATE TABLE ${q(dst)}.canary (id int)`);
    const pool = env.newPool();
    try {
      for (const [i, name] of CORPUS.entries()) {
        const cols = CORPUS.map((c, j) => `${q(c)} text${j === i ? ' PRIMARY KEY' : ''}`).join(', ');
        await env.query(`CREATE TABLE ${q(src)}.${q(name)} (${cols})`);
        await env.query(
          `INSERT INTO ${q(src)}.${q(name)} SELECT ${CORPUS.map((_, j) => `'v${j}-' || g || ${j === 3 ? `E'\\\\.'` : "''"}`).join(', ')} FROM generate_series(1, 5) g`,
        );
        const unitId = formatTableName({ schema: src, name });
        expect(parseTableName(unitId)).toEqual({ schema: src, name });
        const res = await runUnit({
          source: new PostgresSource({ pool }),
          sink: new PostgresSink({ pool, schema: dst, ledgerTable: `${dst}.ledger` }),
          staging: new MemoryStagingProvider(),
          kv: new MemoryKvStore(),
          unit: { vendor: 'postgres', endpointId: 'pg', unitId },
          disposition: i % 2 ? 'merge' : 'append',
        });
        expect(res.stats.rowsImported).toBe(5);
        const list = CORPUS.map(q).join(', ');
        const { rows } = await env.query(
          `SELECT count(*)::int AS n FROM ((SELECT ${list} FROM ${q(src)}.${q(name)} EXCEPT SELECT ${list} FROM ${q(dst)}.${q(name)})
             UNION ALL (SELECT ${list} FROM ${q(dst)}.${q(name)} EXCEPT SELECT ${list} FROM ${q(src)}.${q(name)})) x`,
        );
        expect(rows[0].n).toBe(0);
      }
      const { rows: tables } = await env.query(
        `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY relname`,
        [dst],
      );
      expect(tables.map((t) => t.relname).sort()).toEqual(['canary', 'ledger', ...CORPUS].sort());
      const { rows: canaries } = await env.query(
        `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'canary' AND relnamespace IN ($1::regnamespace, $2::regnamespace)`,
        [q(src), q(dst)],
      );
      expect(canaries[0].n).toBe(2);
    } finally {
      await env.query(`DROP SCHEMA IF EXISTS ${q(dst)} CASCADE`);
    }
  });

  it('names over 63 bytes are refused with config_invalid naming the identifier, before any statement', async () => {
    const long = 'y'.repeat(64);
    const longUnicode = 'é'.repeat(32); // 64 bytes
    const pool = env.newPool();
    const sink = new PostgresSink({ pool, schema: env.schema, ledgerTable: `${env.schema}.ledger64` });
    const staging = new MemoryStagingProvider();
    const ctx = testContext({ unitId: `s.${long}` });
    const session = await staging.allocateSession(ctx);
    const w = session.writer({ slice: 0 });
    await w.writeBatch([{ id: 1 }]);
    await w.close();
    const req = (unitId: string, field: string) => ({
      unitId,
      reader: session.reader(),
      slices: [{ index: 0, rows: 1, reader: session.reader({ slice: 0 }) }],
      handles: [],
      schema: { fields: [{ name: field, type: 'int64' as const, nullable: true }] },
      disposition: 'append' as const,
    });
    for (const [unitId, field, bad] of [
      [`s.${long}`, 'id', long],
      [`s.${longUnicode}`, 'id', longUnicode],
      ['s.ok', long, long],
    ]) {
      const err = await sink.import(req(unitId, field), ctx).catch((e) => e);
      expect(IngestError.is(err, 'config_invalid')).toBe(true);
      expect(err.message).toContain(bad);
      expect(err.message).toMatch(/63/);
    }
    const { rows } = await env.query(
      `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE 'yyyy%'`,
      [q(env.schema)],
    );
    expect(rows).toEqual([]);
    expect(() => new PostgresSource({ pool, units: { [`public.${long}`]: {} } })).toThrow(/63/);
  });
});

describe('secrets', () => {
  const role = `nucleus_pw_${randomBytes(4).toString('hex')}`;
  const password = `Pw-${randomBytes(12).toString('hex')}`;
  afterAll(async () => {
    await env.query(`DROP OWNED BY ${q(role)} CASCADE`).catch(() => {});
    await env.query(`DROP ROLE IF EXISTS ${q(role)}`).catch(() => {});
  });

  it("the connection string's password appears in no error, cause, log line, event or checkpoint", async () => {
    await env.query(`CREATE ROLE ${q(role)} LOGIN PASSWORD '${password}'`);
    await env.query(`GRANT ALL ON SCHEMA ${q(env.schema)} TO ${q(role)}`);
    await env.query(
      `CREATE TABLE ${q(env.schema)}.secret_src (id bigint PRIMARY KEY, v text, ts timestamptz NOT NULL DEFAULT now())`,
    );
    await env.query(`INSERT INTO ${q(env.schema)}.secret_src (id, v) SELECT g, 'v' FROM generate_series(1, 50) g`);
    await env.query(`GRANT ALL ON ALL TABLES IN SCHEMA ${q(env.schema)} TO ${q(role)}`);
    const base = new URL(env.url);
    const url = (over: { port?: string; db?: string; pw?: string } = {}) => {
      const u = new URL(base);
      u.username = role;
      u.password = over.pw ?? password;
      if (over.port) u.port = over.port;
      if (over.db) u.pathname = `/${over.db}`;
      return u.toString();
    };
    const transcript: unknown[] = [];
    const logger: Logger = {
      debug: (m, f) => transcript.push(m, f),
      info: (m, f) => transcript.push(m, f),
      warn: (m, f) => transcript.push(m, f),
      error: (m, f) => transcript.push(m, f),
    };
    const dump = (err: unknown): unknown[] => {
      const out: unknown[] = [];
      let e: any = err;
      for (let i = 0; e && i < 10; i++, e = e.cause)
        out.push(String(e), e.message, e.stack, JSON.stringify(e), e.details);
      return out;
    };
    const unitId = `${env.schema}.secret_src`;
    const kv = new MemoryKvStore();
    const source = new PostgresSource({ connectionString: url(), units: { [unitId]: { cursorColumns: ['ts'] } } });
    const sink = new PostgresSink({
      connectionString: url(),
      tables: { [unitId]: `${env.schema}.secret_dst` },
      ledgerTable: `${env.schema}.secret_ledger`,
    });
    const ok = await runUnit({
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      logger,
      unit: { vendor: 'postgres', endpointId: 'pg', unitId, sinkId: 'copy' },
      onEvent: (e) => transcript.push(e),
      disposition: 'append',
    });
    expect(ok.stats.rowsImported).toBe(50);
    transcript.push(ok);
    let entries = 0;
    for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default' })) {
      transcript.push(e);
      entries++;
    }
    expect(entries).toBeGreaterThan(0); // the checkpoint is among them
    await source.close();
    await sink.close();

    const failures: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>) => {
      const err = await fn().then(
        () => undefined,
        (e) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(IngestError.is(err)).toBe(true);
      failures.push(err);
      transcript.push(...dump(err));
    };
    const ctx = testContext({ unitId, logger });
    // connection refused (nothing listens on port 1)
    const refused = new PostgresSource({ connectionString: url({ port: '1' }) });
    await attempt(async () => {
      for await (const _ of refused.read({ unitId, mode: 'full', checkpoint: null }, ctx));
    });
    expect((failures.at(-1) as IngestError).retryable).toBe(true);
    await refused.close();
    // the server refuses: unknown database
    const noDb = new PostgresSink({ connectionString: url({ db: `nope_${randomBytes(3).toString('hex')}` }) });
    await attempt(() =>
      noDb.import(
        { unitId, reader: { iterBatches: async function* () {} }, slices: [], handles: [], disposition: 'append' },
        ctx,
      ),
    );
    await noDb.close();
    // a wrong password (rejected when the server checks passwords; otherwise the unknown table fails the read)
    const wrong = new PostgresSource({ connectionString: url({ pw: `${password}-wrong` }) });
    await attempt(async () => {
      for await (const _ of wrong.read({ unitId: `${env.schema}.missing_table`, mode: 'full', checkpoint: null }, ctx));
    });
    await wrong.close();
    // a failing run through runUnit: events and log lines of a failure
    await attempt(() =>
      runUnit({
        source: new PostgresSource({ connectionString: url({ port: '1' }) }),
        sink: new PostgresSink({ connectionString: url({ port: '1' }) }),
        staging: new MemoryStagingProvider(),
        kv,
        logger,
        unit: { vendor: 'postgres', endpointId: 'pg', unitId: `${env.schema}.secret_src`, sinkId: 'dead' },
        policy: { retry: { maxAttempts: 1 } },
        onEvent: (e) => transcript.push(e),
      }),
    );
    transcript.push(...ctx.events);

    const text = JSON.stringify(transcript, (_k, v) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Error ? { m: v.message, s: v.stack } : v,
    );
    expect(text.length).toBeGreaterThan(1000);
    expect(text).toContain('run.failed');
    expect(text).not.toContain(password);
    expect(text).not.toContain(encodeURIComponent(password));
  });
});
