/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts; with no name, lists what exists.
 * Each benchmark measures against a baseline in the same process and prints ratios.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.log(`usage: npm run bench -- <${available.join('|')}> [args]`);
  process.exit(name ? 2 : 0);
}
const mod = await import(pathToFileURL(join(here, `${name}.ts`)).href);
if (typeof mod.main === 'function') await mod.main(process.argv.slice(3));
