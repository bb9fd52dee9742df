import { describe } from 'vitest';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { describeSinkEndpoint, describeSourceEndpoint } from '../../src/testing/vitest/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('contract');

describe('PostgreSQL endpoints against the contract suites', () => {
  describeSourceEndpoint(
    'postgres',
    async () => {
      await env.query(
        `CREATE TABLE "${env.schema}".people (id bigint PRIMARY KEY, name text, seen timestamptz NOT NULL)`,
      );
      await env.query(
        `INSERT INTO "${env.schema}".people SELECT g, 'p' || g, '2024-01-01'::timestamptz + (g / 7) * interval '1 minute' FROM generate_series(1, 250) g`,
      );
      return new PostgresSource({
        pool: env.newPool(),
        batchSize: 40,
        units: { [`${env.schema}.people`]: { cursorColumns: ['seen'] } },
      });
    },
    {
      get unitId() {
        return `${env.schema}.people`;
      },
      expectedRows: 250,
    },
  );

  const readBack = async (unitId: string) => {
    const source = new PostgresSource({ pool: env.newPool() });
    const table = `${env.schema}.${unitId.split('.')[1]}`;
    const { rows } = await source.preview({ unitId: table, limit: 10_000 }, testContext({ unitId: table }));
    return rows;
  };
  describeSinkEndpoint(
    'postgres',
    () => new PostgresSink({ pool: env.newPool(), schema: env.schema, ledgerTable: `${env.schema}.ledger` }),
    {
      unitId: 'x.items',
      readBack,
    },
  );
});
