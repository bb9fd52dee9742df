/** Two processes sharing one kv-store.json: compare-and-set holds and no write is lost. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileKvStore } from '../../../src/fs/index.js';

const dir = mkdtempSync(join(tmpdir(), 'nucleus-filekv-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WORKER = `
import { FileKvStore } from ${JSON.stringify(resolve(__dirname, '../../../src/fs/index.ts'))};
const kv = new FileKvStore({ path: process.argv[2] });
const key = { namespace: 'n', scopeId: 's', key: 'counter' };
let wins = 0;
for (let i = 0; i < Number(process.argv[3]); i++) {
  for (;;) {
    const cur = await kv.get(key);
    try {
      await kv.put(key, { n: (cur?.value.n ?? 0) + 1, by: [...(cur?.value.by ?? []), process.pid] }, { expectedVersion: cur ? cur.version : null });
      wins++;
      break;
    } catch (e) { if (e.code !== 'kv_conflict') throw e; }
  }
  await kv.put({ ...key, key: 'own-' + process.pid + '-' + i }, i);
}
console.log(wins);
`;

describe('FileKvStore across processes', () => {
  it('two processes incrementing one counter with compare-and-set lose no increment', async () => {
    const path = join(dir, 'kv-store.json');
    const script = join(dir, 'worker.mts');
    writeFileSync(script, WORKER);
    const perWorker = 40;
    const run = () =>
      new Promise<number>((ok, fail) => {
        const p = spawn(process.execPath, ['--import', 'tsx', script, path, String(perWorker)], {
          cwd: resolve(__dirname, '../../..'),
        });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('exit', (code) =>
          code === 0 ? ok(Number(out.trim())) : fail(new Error(`worker exited ${code}: ${err}`)),
        );
      });
    const wins = await Promise.all([run(), run()]);
    expect(wins).toEqual([perWorker, perWorker]);
    const kv = new FileKvStore({ path });
    const counter = await kv.get<{ n: number; by: number[] }>({ namespace: 'n', scopeId: 's', key: 'counter' });
    expect(counter?.value.n).toBe(2 * perWorker);
    expect(counter?.version).toBe(2 * perWorker);
    expect(counter?.value.by).toHaveLength(2 * perWorker);
    let own = 0;
    for await (const _ of kv.list({ namespace: 'n', scopeId: 's', keyPrefix: 'own-' })) own++;
    expect(own).toBe(2 * perWorker);
  });
});
