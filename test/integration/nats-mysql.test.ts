/**
 * JetStream → MariaDB: the MySQL sink's ledger makes the stream exactly once too — a sink failure after some slices
 * committed is retried without duplicating them, and the next run takes only the new messages.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { MySqlSink } from '../../src/mysql/index.js';
import { JetStreamSource } from '../../src/nats/index.js';
import { failOnce } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { useNats } from '../helpers/nats.js';

const my = useMySql('nats');
const nats = useNats();

describe('JetStreamSource → MySQL', () => {
  it('holds each message once after a sink failure mid-run and a second run', async () => {
    const stream = await nats.stream('my');
    await nats.publish(
      `${stream}.a`,
      Array.from({ length: 120 }, (_, i) => ({ n: i, tag: `t${i % 7}` })),
      { source: 'bench' },
    );
    const source = new JetStreamSource({ servers: '127.0.0.1:4222', stream, units: { ev: {} }, fetchBatch: 25 });
    const sink = new MySqlSink({ pool: my.newPool(), tables: { ev: `${my.database}.ev` } });
    const kv = new MemoryKvStore();
    const staging = new MemoryStagingProvider();
    const unit = { endpointId: 'nats', unitId: 'ev' };
    const policy = { sliceMaxRows: 30, retry: { maxAttempts: 3, baseDelayMs: 10 } };
    const flaky = failOnce(sink, { afterSlices: 2 });
    const r1 = await runUnit({ source, sink: flaky, kv, staging, unit, policy });
    expect(flaky.faultsInjected).toBe(1);
    expect(r1.stats.rowsImported).toBe(120);
    await nats.publish(
      `${stream}.a`,
      Array.from({ length: 10 }, (_, i) => ({ n: 120 + i, tag: 'late' })),
    );
    const r2 = await runUnit({ source, sink, kv, staging, unit, policy });
    expect(r2.stats.rowsImported).toBe(10);
    expect(r2.newCheckpoint).toEqual({ stream, seq: 130 });
    const rows = await my.query<any[]>(
      'SELECT count(*) AS n, count(DISTINCT stream_seq) AS d, count(DISTINCT n) AS dn, min(stream_seq) AS lo, max(stream_seq) AS hi FROM ev',
    );
    expect(rows[0]).toMatchObject({ n: '130', d: '130', dn: '130' });
    expect(Number(rows[0].lo)).toBe(1);
    expect(Number(rows[0].hi)).toBe(130);
    await source.close();
    await sink.close();
  });
});
