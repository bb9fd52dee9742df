/**
 * Thousands of generated keys (4,000 in `npm test`; 10,000 with `SOAK=1 npx vitest run <this file>`) — portable ones and hostile ones (`..`, `%2e%2e`, absolute paths, backslashes, NUL,
 * unicode dots, very long keys, paths through symbolic links planted inside the root) — go through put, get, head,
 * list and delete of a FileSystemObjectStore whose root sits next to an "outside" folder full of sentinel files.
 * Afterwards nothing outside the root was created, changed or deleted, and no read ever returned a sentinel.
 */
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import { IngestError } from '../../../src/index.js';

const SENTINEL = 'SENTINEL-outside-the-root-must-never-be-returned';
const KEYS_PER_RUN = 50;
// 80 × 50 = 4,000 keys in `npm test` (10 s alone, but it shares the disk with crash and wide-row suites there: one
// full run took over 240 s); 200 × 50 = 10,000 with SOAK=1; TRAVERSAL_RUNS sets the number of batches.
const RUNS = Number(process.env.TRAVERSAL_RUNS ?? (process.env.SOAK === '1' ? 200 : 80));

let base: string;
let root: string;
let outside: string;

/** Every entry under `dir` (not following links) with its kind and, for files, content. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = lstatSync(path);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isSymbolicLink()) out.set(r, 'link');
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(path, r);
      } else out.set(r, `file:${readFileSync(path, 'utf8')}`);
    }
  };
  walk(dir, '');
  return out;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'nucleus-traversal-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(join(outside, 'deeper'), { recursive: true });
  for (const name of ['sentinel.txt', 'escape', 'x', 'a', 'passwd', 'deeper/sentinel.txt', 'root']) {
    writeFileSync(join(outside, name), `${SENTINEL}:${name}`);
  }
  writeFileSync(join(base, 'sibling.txt'), `${SENTINEL}:sibling`);
  mkdirSync(join(root, 'sub'), { recursive: true });
  // Links planted inside the root, pointing outside it.
  symlinkSync(outside, join(root, 'link-out'));
  symlinkSync(base, join(root, 'sub', 'link-up'));
  symlinkSync(join(outside, 'sentinel.txt'), join(root, 'file-link'));
  symlinkSync('../../outside', join(root, 'sub', 'rel-link'));
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

const segmentChars = fc.constantFrom(
  'a',
  'b',
  'x',
  '.',
  '-',
  '_',
  '%',
  '2',
  'e',
  ' ',
  'é',
  '日',
  '🚀',
  '\u2024', // one dot leader
  '\uFF0E', // fullwidth full stop
  '\u2215', // division slash
  '\uFF0F', // fullwidth solidus
);
const segment = fc.string({ unit: segmentChars, minLength: 1, maxLength: 8 });
const validKey = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));

const hostilePiece = fc.constantFrom(
  '..',
  '.',
  '',
  '%2e%2e',
  '%2E%2E',
  '..%2f',
  '..\\..',
  '\\',
  '/',
  'C:',
  '\u0000',
  '\n',
  '\u007f',
  'link-out',
  'sub/link-up',
  'sub/rel-link',
  'file-link',
  'outside',
  'sentinel.txt',
  'escape',
  'passwd',
  'root',
  '.nucleus~meta',
  '.nucleus~tmp~1',
  '\u2024\u2024',
  '\uFF0E\uFF0E',
  '\ud800',
);
const hostileKey = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.array(fc.oneof(hostilePiece, segment), { minLength: 1, maxLength: 6 }).map((p) => p.join('/')),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.constantFrom('/', '../', '../../', '\\', 'sub/link-up/', 'link-out/', 'sub/rel-link/'), validKey)
      .map(([a, b]) => a + b),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(validKey, fc.constantFrom('/..', '/../..', '/../../outside/sentinel.txt', '\u0000', '/', '//x'))
      .map(([a, b]) => a + b),
  },
  { weight: 3, arbitrary: fc.integer({ min: 256, max: 2100 }).map((n) => 'y'.repeat(n)) },
  // Deep paths (the 1024-byte, 512-level one is checked once, outside the property: it takes seconds to walk).
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }).map((n) => `${'a/'.repeat(n)}z`) },
);
const anyKey = fc.oneof({ weight: 1, arbitrary: validKey }, { weight: 4, arbitrary: hostileKey });

const ALLOWED = new Set(['invalid_key', 'not_found']);

async function settle(op: () => Promise<unknown>): Promise<unknown> {
  try {
    return await op();
  } catch (err) {
    if (!IngestError.is(err) || !ALLOWED.has(err.code)) throw err;
    return undefined;
  }
}

async function readText(source: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts).toString('utf8');
}

describe('FileSystemObjectStore path traversal (property)', () => {
  it(`${(RUNS * KEYS_PER_RUN).toLocaleString('en-US')} generated keys never create, read or delete anything outside the root`, {
    timeout: 480_000,
  }, async () => {
    // Durability is not what this test is about: skip fsync so thousands of keys fit in seconds.
    const store = new FileSystemObjectStore({ root, fsync: false });
    const outsideBefore = snapshot(outside);
    const baseBefore = readdirSync(base).sort();
    let keys = 0;
    let stored = 0;
    await fc.assert(
      // Distinct keys per batch: the batch runs concurrently, and each key checks it reads back its own bytes.
      fc.asyncProperty(fc.uniqueArray(anyKey, { minLength: KEYS_PER_RUN, maxLength: KEYS_PER_RUN }), async (batch) => {
        keys += batch.length;
        await Promise.all(
          batch.map(async (key, i) => {
            const body = new TextEncoder().encode(`inside:${i}`);
            const put = await settle(() =>
              i % 2
                ? store.put(key, body)
                : store.put(
                    key,
                    (async function* () {
                      yield body;
                    })(),
                  ),
            );
            if (put) stored++;
            const got = await settle(async () => readText(await store.get(key)));
            if (typeof got === 'string') {
              expect(got).not.toContain(SENTINEL);
              expect(got).toBe(`inside:${i}`);
            }
            const head = (await settle(() => store.head(key))) as { size: number } | undefined;
            if (put) expect(head?.size).toBe(body.byteLength);
            await settle(async () => {
              for await (const info of store.list(key)) {
                expect(info.key.startsWith(key)).toBe(true);
                const text = await readText(await store.get(info.key)).catch(() => '');
                expect(text).not.toContain(SENTINEL);
              }
            });
            await settle(() => store.delete([key]));
          }),
        );
        expect(snapshot(outside)).toEqual(outsideBefore);
      }),
      { numRuns: RUNS },
    );
    expect(keys).toBe(RUNS * KEYS_PER_RUN);
    expect(stored).toBeGreaterThan(500);
    expect(snapshot(outside)).toEqual(outsideBefore);
    expect(readdirSync(base).sort()).toEqual(baseBefore);
    expect(readFileSync(join(base, 'sibling.txt'), 'utf8')).toBe(`${SENTINEL}:sibling`);
    // The planted links are still there and nothing readable came through them.
    for (const link of ['link-out', 'sub/link-up', 'sub/rel-link', 'file-link']) {
      expect(lstatSync(join(root, link)).isSymbolicLink()).toBe(true);
    }
    const deepest = `${'a/'.repeat(511)}z`;
    await store.put(deepest, new TextEncoder().encode('deep'));
    expect(await readText(await store.get(deepest))).toBe('deep');
    await store.delete([deepest]);
    await expect(store.put(`${deepest}zz`, new Uint8Array(1))).rejects.toMatchObject({ code: 'invalid_key' });
    expect(
      readdirSync(root)
        .filter((n) => !n.startsWith('.nucleus~'))
        .sort(),
    ).toEqual(['file-link', 'link-out', 'sub']);
    for (const key of ['file-link', 'link-out/sentinel.txt', 'sub/link-up/sibling.txt', 'sub/rel-link/escape']) {
      await expect(store.get(key)).rejects.toMatchObject({ code: 'invalid_key' });
    }
  });
});
