import { HttpJsonSource } from '../../src/http/index.js';
import { describeSourceEndpoint } from '../../src/testing/vitest/index.js';
import { json, startServer, type TestServer } from './http-fixtures.js';

let server: TestServer | undefined;

const records = Array.from({ length: 25 }, (_, i) => ({
  id: i + 1,
  updated_at: new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString(),
}));

describeSourceEndpoint(
  'HttpJsonSource',
  async () => {
    server = await startServer();
    server.handle((req, res) => {
      const since = req.query.updated_since;
      const matching = records.filter((r) => !since || r.updated_at >= since);
      const page = Number(req.query.page);
      const size = Number(req.query.size);
      json(res, { items: matching.slice((page - 1) * size, page * size) });
    });
    return new HttpJsonSource({
      baseUrl: server.url,
      units: {
        events: {
          path: '/events',
          recordsPath: 'items',
          pagination: { style: 'page', pageParam: 'page', sizeParam: 'size', pageSize: 10 },
          incremental: { param: 'updated_since', field: 'updated_at' },
        },
      },
    });
  },
  { unitId: 'events', expectedRows: 25, teardown: () => server?.close() },
);
