import { describe } from 'vitest';
import { MySqlSink, MySqlSource } from '../../src/mysql/index.js';
import { testContext } from '../../src/testing/index.js';
import { describeSinkEndpoint, describeSourceEndpoint } from '../../src/testing/vitest/index.js';
import { useMySql } from '../helpers/mysql.js';

const env = useMySql('contract');

describe('MySQL endpoints against the contract suites (MariaDB)', () => {
  describeSourceEndpoint(
    'mysql',
    async () => {
      await env.query(
        'CREATE TABLE people (id BIGINT PRIMARY KEY, name VARCHAR(40), seen DATETIME(6) NOT NULL) ENGINE=InnoDB',
      );
      await env.query(
        `INSERT INTO people WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 250)
         SELECT n, CONCAT('p', n), TIMESTAMP('2024-01-01') + INTERVAL (n DIV 7) MINUTE FROM g`,
      );
      return new MySqlSource({
        pool: env.newPool(),
        batchSize: 40,
        units: { [`${env.database}.people`]: { cursorColumns: ['seen'] } },
      });
    },
    {
      get unitId() {
        return `${env.database}.people`;
      },
      expectedRows: 250,
    },
  );

  for (const loadMethod of ['load-data', 'insert'] as const) {
    describeSinkEndpoint(
      `mysql (${loadMethod})`,
      () =>
        new MySqlSink({
          pool: env.newPool(),
          loadMethod,
          tables: { [`x.items_${loadMethod}`]: `items_${loadMethod.replace('-', '_')}` },
        }),
      {
        unitId: `x.items_${loadMethod}`,
        readBack: async () => {
          const source = new MySqlSource({ pool: env.newPool() });
          const unitId = `${env.database}.items_${loadMethod.replace('-', '_')}`;
          const { rows } = await source.preview({ unitId, limit: 10_000 }, testContext({ unitId }));
          // BOOLEAN is TINYINT(1) in MySQL: read back as 0/1
          return rows.map((r) => ({ ...r, active: r.active === null ? null : r.active === 1 }));
        },
        // a decimal without precision becomes DECIMAL(65,30) (docs/mysql.md): same number, 30 digits of scale
        normalize: (r) => ({
          ...r,
          amount: typeof r.amount === 'string' ? Number(r.amount).toFixed(2) : r.amount,
        }),
      },
    );
  }
});
