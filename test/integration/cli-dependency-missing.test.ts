/**
 * `type: postgres` (or a postgres KvStore, or the pg-copy codec) without `pg` installed: `dependency_missing` naming the
 * package and `npm install …` — never `Unknown endpoint "postgres"`. The child process runs the real CLI with a Node
 * resolver hook that reports `pg` as not installed, exactly as Node does for a missing package.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './cli-helpers.js';

const HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier === 'pg' || specifier.startsWith('pg/')) {
    const err = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}
`;

async function withoutPg(dir: string): Promise<NodeJS.ProcessEnv> {
  await writeFile(join(dir, 'hooks.mjs'), HOOKS);
  await writeFile(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
  );
  return { NODE_OPTIONS: `--import=${pathToFileURL(join(dir, 'register.mjs')).href}` };
}

describe('nucleus-ingest without the optional peer pg', () => {
  it('a postgres source, sink or KvStore fails dependency_missing naming pg and the install command (exit 4)', async () => {
    const ws = await workspace();
    const env = await withoutPg(ws.dir);
    const cases = {
      'source.yaml': `source: { type: postgres, id: db, config: { connectionString: "postgres://u@127.0.0.1:1/x" } }
sink: { type: object-store, id: lake, config: { format: ndjson, root: "${ws.dir}/lake" } }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: file, path: "${ws.dir}/kv.json" }
units: [public.users]
`,
      'sink.yaml': `source: { type: sample, id: crm, config: { units: { users: { rows: 10 } } } }
sink: { type: postgres, id: wh, config: { connectionString: "postgres://u@127.0.0.1:1/x" } }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: file, path: "${ws.dir}/kv.json" }
units: [users]
`,
      'kv.yaml': `source: { type: sample, id: crm, config: { units: { users: { rows: 10 } } } }
sink: { type: object-store, id: lake, config: { format: ndjson, root: "${ws.dir}/lake" } }
staging: { type: filesystem, root: "${ws.dir}/staging" }
kv: { type: postgres, connectionString: "postgres://u@127.0.0.1:1/x" }
units: [users]
`,
    };
    for (const [name, yaml] of Object.entries(cases)) {
      const file = await ws.write(name, yaml);
      const res = await runCli(['run', file], { env });
      expect(res.stderr, name).toMatch(/error \[dependency_missing\]/);
      expect(res.stderr, name).toMatch(/"pg", which is not installed: run `npm install pg/);
      expect(res.stderr, name).toContain('install the package named above, then run again');
      expect(res.stderr + res.stdout, name).not.toMatch(/Unknown endpoint/);
      expect(res.code, name).toBe(4);
    }
  }, 120_000);
});
