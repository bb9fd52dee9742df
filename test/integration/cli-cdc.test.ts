import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSourceTable } from '../helpers/cdc.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';
import { runCli, workspace } from './cli-helpers.js';

const cluster = useLogicalCluster();

describe('nucleus-ingest cdc (postgres.cdc source on a private logical cluster)', { timeout: 120_000 }, () => {
  it('runs a unit, shows its slot with retained WAL and lag, drops the slot only when asked', async () => {
    const db = cluster.pool();
    await db.query('CREATE SCHEMA app');
    await createSourceTable(db, 'app.items', 'pub_items', 50);
    const ws = await workspace();
    const file = await ws.write(
      'cdc.yaml',
      `source:
  type: postgres.cdc
  id: shop
  config: { connectionString: "\${env:PG_URL}", publication: pub_items, slot: cli, units: [app.items], maxWaitMs: 3000 }
sink: { type: postgres, id: wh, config: { connectionString: "\${env:PG_URL}", schema: tgt } }
staging: { type: filesystem, root: "${join(ws.dir, 'staging')}" }
kv: { type: file, path: "${join(ws.dir, 'kv.json')}" }
units: [app.items]
disposition: merge
`,
    );
    const opts = { env: { PG_URL: cluster.url } };
    // a preview reads the table directly: no slot is created (nor dropped)
    const preview = await runCli(['--json', 'preview', file, 'app.items', '--limit', '3'], opts);
    expect(preview.code).toBe(0);
    const before = await runCli(['--json', 'cdc', 'status', file], opts);
    expect(before.code).toBe(0);
    expect(before.lines.find((l) => l.type === 'cdc.status')?.slots[0]).toMatchObject({ exists: false });

    const run = await runCli(['--json', 'run', file], opts);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    await db.query(`DELETE FROM app.items WHERE id <= 10`);
    expect((await runCli(['--json', 'run', file], opts)).code).toBe(0);
    expect(Number((await db.query('SELECT count(*) AS n FROM tgt.items')).rows[0].n)).toBe(40);

    const status = await runCli(['--json', 'cdc', 'status', file, 'app.items'], opts);
    const slot = status.lines.find((l) => l.type === 'cdc.status')?.slots[0];
    expect(slot).toMatchObject({ unitId: 'app.items', exists: true, walStatus: 'reserved', active: false });
    expect(typeof slot.retainedBytes).toBe('number');
    expect(typeof slot.lagBytes).toBe('number');
    const text = await runCli(['cdc', 'status', file], opts);
    expect(text.stdout).toContain('retained');

    const drop = await runCli(['--json', 'cdc', 'drop-slot', file, 'app.items'], opts);
    expect(drop.lines.find((l) => l.type === 'cdc.drop-slot')).toMatchObject({ dropped: true });
    // the unit cannot go on without its slot: a clear, permanent error naming the resync
    const after = await runCli(['run', file], opts);
    expect(after.code).toBe(4);
    expect(after.stderr).toContain('checkpoint_invalid');
    expect(after.stderr).toContain("mode 'full'");
    expect((await runCli(['run', file, '--mode', 'full'], opts)).code).toBe(0);
  });
});
