/**
 * `CopyOutStream` (the COPY TO reader of the pass-through and the transcoded exports): the bytes are exactly what
 * pg-copy-streams' `to()` gives for the same COPY, every piece ends at a row end, rows longer than a piece and
 * notices between rows are handled, and a COPY that fails midway fails the stream and leaves the connection usable.
 */
import { to as copyTo } from 'pg-copy-streams';
import { describe, expect, it } from 'vitest';
import { CopyOutStream } from '../../src/postgres/copy-out-stream.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('copyout');

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  for await (const b of stream) pieces.push(b);
  return pieces;
}

describe('CopyOutStream', () => {
  it('gives the bytes pg-copy-streams gives, in pieces that end at row ends, long rows included', async () => {
    const pool = env.newPool({ max: 1 });
    const client = await pool.connect();
    try {
      const sql = `COPY (SELECT g, repeat(md5(g::text), CASE WHEN g % 997 = 0 THEN 5000 ELSE 1 END), E'a\\tb\\\\c', NULL::text
        FROM generate_series(1, 20000) g) TO STDOUT`;
      const expected = Buffer.concat(await collect(client.query(copyTo(sql)) as AsyncIterable<Buffer>));
      const stream = client.query(new CopyOutStream(sql));
      const pieces = await collect(stream);
      expect(Buffer.concat(pieces).equals(expected)).toBe(true);
      expect(pieces.length).toBeGreaterThan(10);
      for (const p of pieces) expect(p[p.length - 1]).toBe(10);
      // a row of 160,000 bytes is a piece of its own, longer than the usual ones
      expect(Math.max(...pieces.map((p) => p.length))).toBeGreaterThan(160_000);
      expect(stream.rowCount).toBe(20000);
      // the connection is pg's again
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      client.release();
    }
  });

  it('skips notices sent between rows', async () => {
    const pool = env.newPool({ max: 1 });
    const client = await pool.connect();
    try {
      await client.query(`CREATE FUNCTION "${env.schema}".noisy(i int) RETURNS int LANGUAGE plpgsql AS
        $$ BEGIN IF i % 100 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$`);
      const pieces = await collect(
        client.query(
          new CopyOutStream(`COPY (SELECT "${env.schema}".noisy(g) FROM generate_series(1, 1000) g) TO STDOUT`),
        ),
      );
      const text = Buffer.concat(pieces).toString('utf8');
      expect(text).toBe(`${Array.from({ length: 1000 }, (_, i) => i + 1).join('\n')}\n`);
    } finally {
      client.release();
    }
  });

  it('fails with the server error when the COPY fails midway, and the connection stays usable', async () => {
    const pool = env.newPool({ max: 1 });
    const client = await pool.connect();
    try {
      const stream = client.query(
        new CopyOutStream('COPY (SELECT 1 / (50000 - g) FROM generate_series(1, 100000) g) TO STDOUT'),
      );
      await expect(collect(stream)).rejects.toThrow(/division by zero/);
      expect((await client.query('SELECT 2 AS two')).rows[0].two).toBe(2);
    } finally {
      client.release();
    }
  });
});
