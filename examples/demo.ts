/**
 * `npm run demo` — the main job on embedded defaults, through the `nucleus-ingest` CLI:
 * a built-in sample source ("orders") → filesystem staging (.demo/staging) → NDJSON files (.demo/warehouse),
 * with the checkpoint in a local kv-store.json (.demo/kv-store.json).
 *
 * Every invocation first lets the simulated upstream grow by 2,500 orders, so the second run picks up
 * only the new rows. Delete .demo/ to start over.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCli } from '../src/cli/cli.js';
import { FileKvStore } from '../src/fs/index.js';
import { checkpointKey } from '../src/index.js';

const dir = resolve('.demo');
mkdirSync(dir, { recursive: true });
const upstreamFile = join(dir, 'upstream.json');
let upstream = { orders: 0 };
try {
  upstream = JSON.parse(readFileSync(upstreamFile, 'utf8'));
} catch {}
upstream.orders += upstream.orders === 0 ? 10_000 : 2_500;
writeFileSync(upstreamFile, JSON.stringify(upstream));

const pipeline = {
  version: 1,
  source: {
    type: 'sample',
    id: 'shop',
    vendor: 'sample',
    config: { units: { orders: { rows: upstream.orders, batchSize: 500, delayMs: 15 } } },
  },
  sink: { type: 'object-store', id: 'warehouse', config: { root: join(dir, 'warehouse'), format: 'ndjson' } },
  staging: { type: 'filesystem', root: join(dir, 'staging') },
  kv: { type: 'file', path: join(dir, 'kv-store.json') },
  units: ['orders'],
  policy: { sliceMaxRows: 2_000 },
};
const pipelineFile = join(dir, 'pipeline.json');
writeFileSync(pipelineFile, JSON.stringify(pipeline, null, 2));
console.log(`upstream now holds ${upstream.orders} orders; running ${pipelineFile}\n`);

const code = await runCli(['run', pipelineFile], {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onInterrupt(handler) {
    process.on('SIGINT', handler);
    return () => process.off('SIGINT', handler);
  },
});

// Where the next run starts: the unit's checkpoint, the KvStore entry at `checkpointKey(…)`.
const kv = new FileKvStore({ path: pipeline.kv.path });
const checkpoint = await kv.get(
  checkpointKey({ vendor: 'sample', endpointId: 'shop', unitId: 'orders', sinkId: 'warehouse' }),
);
console.log(`\ncheckpoint: ${JSON.stringify(checkpoint?.value ?? null)} (version ${checkpoint?.version ?? 0})`);
console.log('\nrun `npm run demo` again: only the new orders move.');
process.exitCode = code;
