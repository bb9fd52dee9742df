/**
 * A private PostgreSQL cluster with `wal_level = logical` for change-data-capture tests (see pg-logical-cluster.ts):
 * `useLogicalCluster()` starts one per test file (beforeAll) and stops it (afterAll).
 */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { type LogicalCluster, startLogicalCluster } from './pg-logical-cluster.js';

export { type LogicalCluster, startLogicalCluster } from './pg-logical-cluster.js';

/** One private logical cluster for this test file, started in beforeAll and stopped in afterAll. */
export function useLogicalCluster(): { readonly url: string; readonly port: number; pool(): pg.Pool } {
  let cluster: LogicalCluster | undefined;
  const pools: pg.Pool[] = [];
  beforeAll(async () => {
    cluster = await startLogicalCluster();
  }, 120_000);
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await cluster?.stop();
  }, 60_000);
  return {
    get url() {
      if (!cluster) throw new Error('the logical cluster starts in beforeAll');
      return cluster.url;
    },
    get port() {
      return cluster!.port;
    },
    pool() {
      const p = new pg.Pool({ connectionString: cluster!.url, max: 4 });
      p.on('error', () => {});
      pools.push(p);
      return p;
    },
  };
}
